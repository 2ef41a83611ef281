"""Cryptography for the Security Whitepaper: keys, certificates and signatures (PyCA ``cryptography``)."""
