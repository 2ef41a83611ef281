"""The service layer: the running central system, split by job.

Entry points (the OCPP endpoint, the REST API) call into it; it calls the
domain, the store and the read models, and never an entry point back.
"""
