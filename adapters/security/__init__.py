"""X.509 and TLS with the ``cryptography`` package and Python's ``ssl``: reading CSRs and certificates,
the built-in certificate authority, firmware signatures, what the transport presents (read into plain
values for the domain), and the server's TLS contexts. The domain decides from what these read; nothing
here decides a rule.
"""
