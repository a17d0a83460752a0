"""Keyset pagination: while runs are being created, a listing neither skips nor repeats a run."""

from __future__ import annotations

import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.store import runs


def create(database, count: int, name: str = "run") -> list[int]:
    with database.transaction() as session:
        return [runs.create(session=session, config=None, execute=False, name=f"{name} {i}").id for i in range(count)]


def walk(database, sort: str, limit: int, between_pages=lambda: None) -> list[int]:
    seen, cursor = [], None
    while True:
        with database.transaction(write=False) as session:
            page = runs.page(session=session, sort=sort, limit=limit, cursor=cursor)
            seen += [run.id for run in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
        between_pages()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    existing=st.integers(1, 25), limit=st.integers(1, 7), inserted=st.integers(0, 4),
    sort=st.sampled_from(["created_at", "-created_at", "name", "-name", "status", "id", "-id"]),
)
def test_a_listing_sees_every_existing_run_once_while_others_are_inserted(database, existing, limit, inserted, sort):
    before = set(create(database, existing, name="old"))
    rounds = iter(range(5))

    def insert_some() -> None:  # between the first pages: an ascending listing would chase new runs forever
        if next(rounds, None) is not None:
            create(database, inserted, name="new")

    seen = walk(database, sort, limit, between_pages=insert_some)
    assert len(seen) == len(set(seen)), "a run was listed twice"
    assert before <= set(seen), "an existing run was skipped"
    with database.transaction() as session:  # clean up for the next example
        for run_id in seen:
            runs.delete(session=session, run=runs.get(session=session, run_id=run_id))


def test_a_listing_is_exact_under_truly_concurrent_inserts(database):
    before = set(create(database, 60))
    stop = threading.Event()

    def insert_continuously() -> None:
        while not stop.wait(0.005):
            create(database, 2, name="concurrent")

    writer = threading.Thread(target=insert_continuously)
    writer.start()
    try:
        seen = walk(database, "-created_at", 7)
    finally:
        stop.set()
        writer.join()
    assert len(seen) == len(set(seen)) and before <= set(seen)
