"""X.509 with the ``cryptography`` package: reading CSRs and certificates, and the built-in certificate authority.

The domain decides from what these read (domain/certificate_facts.py); nothing here decides a rule.
"""
