"""Certificate requests read model: every CSR a charge point sent (SignCertificate.req) and what became of it.

Statuses: ``pending`` (accepted, waiting to be signed: at once in auto mode,
by an operator in manual mode), ``rejected`` (its CSR refused, or an
operator refused it), ``issued`` (signed and sent), then ``accepted`` or
``refused`` as the charge point answered CertificateSigned. Every node
lists the same requests, whichever node received them. Times are OCPP text.
"""

from __future__ import annotations

from typing import Any

from domain.timestamps import format_ocpp_time
from projections.database import Reader, Sql, Update

TABLES = {
    "certificate_requests": """
        CREATE TABLE IF NOT EXISTS certificate_requests (
            request_id TEXT PRIMARY KEY,
            charge_point_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            key_type TEXT NOT NULL,
            received_at TEXT NOT NULL,
            status TEXT NOT NULL,
            approval TEXT,
            reason TEXT,
            serial_number TEXT,
            fingerprint TEXT,
            charge_point_answer TEXT,
            decided_at TEXT
        );
        CREATE INDEX IF NOT EXISTS certificate_requests_by_status ON certificate_requests (status, received_at)""",
}

PENDING, REJECTED, ISSUED, ACCEPTED, REFUSED = "pending", "rejected", "issued", "accepted", "refused"
STATUSES = (PENDING, REJECTED, ISSUED, ACCEPTED, REFUSED)


def on_requested(event: Any, sql: Sql) -> None:
    sql.run(
        "INSERT INTO certificate_requests (request_id, charge_point_id, subject, key_type, received_at, status,"
        " approval, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING",
        (event.request_id, event.originator_id, event.subject, event.key_type, format_ocpp_time(event.received_at),
         PENDING if event.verdict == "Accepted" else REJECTED, event.approval, event.reason),
    )


def _set(sql: Sql, request_id: str | None, status: str, only_from: tuple[str, ...], **fields: Any) -> None:
    if request_id is None:
        return
    assignments = "".join(f", {column} = ?" for column in fields)
    marks = ", ".join("?" for _ in only_from)
    sql.run(f"UPDATE certificate_requests SET status = ?{assignments} WHERE request_id = ? AND status IN ({marks})",
            (status, *fields.values(), request_id, *only_from))


def on_issued(event: Any, sql: Sql) -> None:
    _set(sql, event.request_id, ISSUED, (PENDING,), serial_number=event.serial_number,
         fingerprint=event.fingerprint, decided_at=format_ocpp_time(event.issued_at))


def on_rejected(event: Any, sql: Sql) -> None:
    _set(sql, event.request_id, REJECTED, (PENDING,), reason=event.reason,
         decided_at=format_ocpp_time(event.rejected_at))


def on_certificate_accepted(event: Any, sql: Sql) -> None:
    _set(sql, event.request_id, ACCEPTED, (ISSUED,), charge_point_answer="Accepted")


def on_certificate_refused(event: Any, sql: Sql) -> None:
    _set(sql, event.request_id, REFUSED, (ISSUED,), charge_point_answer=event.status)


# Event name -> how it changes this read model.
UPDATES: dict[str, Update] = {
    "CertificateSigningRequested": on_requested,
    "CertificateIssued": on_issued,
    "CertificateRequestRejected": on_rejected,
    "ChargePointCertificateAccepted": on_certificate_accepted,
    "ChargePointCertificateRefused": on_certificate_refused,
}

OPTIONAL = {"approval": "approval", "reason": "reason", "serialNumber": "serial_number",
            "fingerprint": "fingerprint", "chargePointAnswer": "charge_point_answer", "decidedAt": "decided_at"}


def request_view(row: dict[str, Any]) -> dict[str, Any]:
    view = {
        "id": row["request_id"],
        "chargePointId": row["charge_point_id"],
        "subject": row["subject"],
        "keyType": row["key_type"],
        "received": row["received_at"],
        "status": row["status"],
    }
    view.update({name: row[column] for name, column in OPTIONAL.items() if row[column] is not None})
    return view


def find_requests(reader: Reader, status: str | None = None, charge_point_id: str | None = None) -> list[Any]:
    """Requests as the API shows them, oldest first."""
    conditions, params = [], []
    if status is not None:
        conditions.append("status = ?")
        params.append(status)
    if charge_point_id is not None:
        conditions.append("charge_point_id = ?")
        params.append(charge_point_id)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = reader.query(f"SELECT * FROM certificate_requests {where} ORDER BY received_at, request_id", params)
    return [request_view(row) for row in rows]


def find_request(reader: Reader, request_id: str) -> dict[str, Any] | None:
    rows = reader.query("SELECT * FROM certificate_requests WHERE request_id = ?", (request_id,))
    return request_view(rows[0]) if rows else None
