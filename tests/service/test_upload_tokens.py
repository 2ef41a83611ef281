"""Upload tokens of GetDiagnostics and GetLog locations: per request, per charge point and kind, for 24 hours,
in the store."""

from __future__ import annotations

import hashlib

from adapters.service.upload_tokens import DIAGNOSTICS, LOGS, TOKEN_LIFETIME, Grant, UploadTokens
from adapters.store import EventStore

PUBLIC_URL = "https://csms.example.com"


async def test_a_token_is_valid_for_its_charge_point_until_it_expires(store, clock):
    tokens = UploadTokens(store.side, PUBLIC_URL, clock)
    location = await tokens.issue("CP-T1")
    token = location.rstrip("/").rsplit("/", 1)[1]

    valid_now = await tokens.valid("CP-T1", token)
    for_another = await tokens.valid("CP-T2", token)
    clock.advance(seconds=TOKEN_LIFETIME.total_seconds() - 1)
    valid_at_the_end = await tokens.valid("CP-T1", token)
    clock.advance(seconds=1)
    valid_after = await tokens.valid("CP-T1", token)

    assert location == f"{PUBLIC_URL}/diagnostics/CP-T1/{token}/"
    assert (valid_now, for_another, valid_at_the_end, valid_after) == (True, False, True, False)


async def test_each_request_gets_a_token_of_its_own_and_only_own_locations_are_rewritten(store, clock):
    tokens = UploadTokens(store.side, PUBLIC_URL, clock)

    first = await tokens.with_location("CP-T3", "GetDiagnostics", {"location": f"{PUBLIC_URL}/diagnostics/CP-T3/"})
    second = await tokens.with_location("CP-T3", "GetDiagnostics", {"location": f"{PUBLIC_URL}/diagnostics/CP-T3"})
    elsewhere = {"location": "ftp://logs.example.com/CP-T3/"}
    other_cp = {"location": f"{PUBLIC_URL}/diagnostics/CP-T33/"}

    assert first["location"] != second["location"]
    assert all(p["location"].startswith(f"{PUBLIC_URL}/diagnostics/CP-T3/") for p in (first, second))
    assert await tokens.with_location("CP-T3", "GetDiagnostics", elsewhere) == elsewhere
    assert await tokens.with_location("CP-T3", "GetDiagnostics", other_cp) == other_cp
    assert not await tokens.valid("CP-T3", "x" * 43)


async def test_a_get_log_location_gets_a_token_for_logs_alone_with_its_request(store, clock):
    tokens = UploadTokens(store.side, PUBLIC_URL, clock)
    request = {"logType": "SecurityLog", "requestId": 12, "log": {"remoteLocation": f"{PUBLIC_URL}/logs/CP-T4/",
                                                                  "oldestTimestamp": "2030-01-01T00:00:00Z"}}

    sent = await tokens.with_location("CP-T4", "GetLog", request)
    token = sent["log"]["remoteLocation"].rstrip("/").rsplit("/", 1)[1]
    diagnostics = (await tokens.issue("CP-T4")).rstrip("/").rsplit("/", 1)[1]

    assert sent["log"]["remoteLocation"] == f"{PUBLIC_URL}/logs/CP-T4/{token}/"
    assert sent["log"]["oldestTimestamp"] == "2030-01-01T00:00:00Z" and sent["requestId"] == 12
    assert await tokens.grant("CP-T4", token, LOGS) == Grant("CP-T4", LOGS, {"requestId": 12,
                                                                              "logType": "SecurityLog"})
    assert await tokens.grant("CP-T4", token, DIAGNOSTICS) is None  # a log location is no diagnostics one
    assert await tokens.grant("CP-T4", diagnostics, LOGS) is None  # nor the other way round
    assert await tokens.with_location("CP-T4", "GetLog", {**request, "log": {"remoteLocation": "ftp://x/"}}) == {
        **request, "log": {"remoteLocation": "ftp://x/"}}


async def test_a_token_table_of_an_older_version_gains_its_kind_and_its_tokens_stay_valid_for_diagnostics(
        store_url, clock):
    token = "B" * 43
    old = EventStore(store_url)  # the table as the version before GetLog made it, with one token in it
    try:
        old.side._run("DROP TABLE csms_upload_tokens")
        old.side._run("CREATE TABLE csms_upload_tokens"
                      " (token_hash TEXT PRIMARY KEY, charge_point_id TEXT NOT NULL, expires_at BIGINT NOT NULL)")
        old.side._run("INSERT INTO csms_upload_tokens VALUES (?, ?, ?)",
                      (hashlib.sha256(token.encode()).hexdigest(), "CP-OLD", int(clock().timestamp()) + 60))
    finally:
        old.close()

    upgraded = [EventStore(store_url), EventStore(store_url)]  # two nodes starting: the second finds it done
    try:
        tokens = UploadTokens(upgraded[1].side, PUBLIC_URL, clock)
        assert await tokens.grant("CP-OLD", token, DIAGNOSTICS) == Grant("CP-OLD", DIAGNOSTICS, {})
        assert await tokens.grant("CP-OLD", token, LOGS) is None
    finally:
        for store in upgraded:
            store.close()
