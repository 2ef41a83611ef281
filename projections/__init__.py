"""Read models built from the event store (status, billing, reservations)."""
