"""The OCPP-J side: the WebSocket endpoint, frames and schemas, one actor per connected charge point."""
