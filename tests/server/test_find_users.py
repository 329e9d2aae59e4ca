"""Finding people: the users route by name, page after page, and the staff among them.

The web app's assignment and queue pickers list every active staff member; they ask the route
for staff only and page by username, so a desk whose staff sort after the first page of other
users still sees them all."""

from __future__ import annotations

import asyncpg

from tests.support import ServerHarness


async def _add_users(database_url: str, rows: list[tuple[str, str, bool]]) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO users (username, display_name, role, deactivated_at)"
            " VALUES ($1, $1, $2, CASE WHEN $3 THEN now() END)", rows)
    finally:
        await conn.close()


async def test_staff_are_found_past_the_first_page_of_other_users_and_paged_by_username(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    caller = await harness.user(node)
    # 60 people who sort before every staff member, then staff of each role and one who left
    people = [(f"aa_person_{i:02d}", "user", False) for i in range(60)]
    staff = [(f"zz_agent_{i:02d}", role, False) for i, role in enumerate(["staff"] * 52 + ["supervisor", "admin"])]
    await _add_users(harness.database_url, [*people, *staff, ("zz_agent_gone", "staff", True)])

    _, first = await caller.call("GET", "/api/v1/users?limit=50", expect=200)
    assert not [u for u in first["users"] if u["username"].startswith("zz_")]  # what the picker saw before

    found: list[str] = []
    after = ""
    for _ in range(5):
        _, page = await caller.call("GET", f"/api/v1/users?staff=true&limit=50&after={after}", expect=200)
        found += [u["username"] for u in page["users"]]
        if len(page["users"]) < 50:
            break
        after = page["users"][-1]["username"]
    want = [name for name, _, _ in staff]
    # every active staff member once, in username order, and no one else (the caller is a user)
    assert found == want

    # a name filter pages the same way
    _, named = await caller.call("GET", "/api/v1/users?q=agent_5&staff=true", expect=200)
    assert [u["username"] for u in named["users"]] == ["zz_agent_50", "zz_agent_51", "zz_agent_52", "zz_agent_53"]
    status, err = await caller.call("GET", "/api/v1/users?staff=maybe")
    assert status == 400, err
