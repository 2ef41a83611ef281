"""Pure domain model of the central system: aggregates, rules and replies.

Nothing here does I/O, reads the clock or knows about asyncio.
"""
