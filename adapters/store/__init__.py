"""Infrastructure: where events, credentials, id blocks and files are kept.

The public face of the store; other packages import from here, not from its
modules: the event store and its configuration, group commit, the hash chain
check, and the side tables.
"""

from adapters.store.config import DEFAULT_STORE, StoreConfig, StoreUrlError, parse_store_url, schema_lock
from adapters.store.event_store import (
    SNAPSHOT_INTERVAL,
    ConflictError,
    EventStore,
    NotRegistered,
    project_events,
    state_at,
)
from adapters.store.file_store import (
    BadFileName,
    FileStore,
    FileTooLarge,
    Received,
    StoredFile,
    read_record,
    remove_record,
    safe_name,
    write_record,
)
from adapters.store.group_commit import AggregateHandle, Command, CommitListener, GroupCommitter
from adapters.store.hash_chain import stored_events_of, verify
from adapters.store.listen import Message, NodeChannel
from adapters.store.node_tables import LEADER_CONNECTION, LEADER_LOCK, Claim, Holder, NodeRow, NodeTables
from adapters.store.side_tables import SideTables

__all__ = [
    "DEFAULT_STORE",
    "LEADER_CONNECTION",
    "LEADER_LOCK",
    "SNAPSHOT_INTERVAL",
    "AggregateHandle",
    "BadFileName",
    "Claim",
    "Command",
    "CommitListener",
    "ConflictError",
    "EventStore",
    "FileStore",
    "Received",
    "FileTooLarge",
    "GroupCommitter",
    "Holder",
    "Message",
    "NodeChannel",
    "NodeRow",
    "NodeTables",
    "NotRegistered",
    "SideTables",
    "StoreConfig",
    "StoreUrlError",
    "StoredFile",
    "parse_store_url",
    "project_events",
    "read_record",
    "remove_record",
    "safe_name",
    "schema_lock",
    "state_at",
    "stored_events_of",
    "verify",
    "write_record",
]
