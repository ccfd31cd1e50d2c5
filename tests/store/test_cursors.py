from __future__ import annotations

from shared.store import Store


async def test_a_cursor_is_none_until_set_then_holds_the_last_value(store: Store) -> None:
    assert await store.get_cursor("acme", "qbo_cdc_since") is None

    await store.set_cursor("acme", "qbo_cdc_since", "2026-01-01T00:00:00Z")
    await store.set_cursor("acme", "qbo_cdc_since", "2026-01-02T00:00:00Z")

    assert await store.get_cursor("acme", "qbo_cdc_since") == "2026-01-02T00:00:00Z"


async def test_cursors_are_per_connection_and_name(store: Store) -> None:
    await store.set_cursor("acme", "a", "1")
    await store.set_cursor("acme", "b", "2")
    await store.set_cursor("other", "a", "3")

    assert [
        await store.get_cursor(connection, name) for connection, name in [("acme", "a"), ("acme", "b"), ("other", "a")]
    ] == [
        "1",
        "2",
        "3",
    ]
