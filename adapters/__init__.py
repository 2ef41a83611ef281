"""Everything that is not the pure domain, in four rooms: the store (infrastructure),
the service layer, and the two entry points (OCPP over WebSocket, the REST API)."""
