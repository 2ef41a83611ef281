"""Everything that touches the outside: sockets, HTTP, the event store."""
