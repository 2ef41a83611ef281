"""AmpLedger load benchmark (see bench/README.md)."""
