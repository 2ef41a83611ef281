"""X.509 and TLS with the ``cryptography`` package and Python's ``ssl``: what the transport presents, read into
plain values for the domain, and the server's TLS contexts. Nothing here decides a rule.
"""
