"""Upload tokens of GetDiagnostics locations: per request, per charge point, for 24 hours, in the store."""

from __future__ import annotations

from adapters.service.upload_tokens import TOKEN_LIFETIME, UploadTokens

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
