"""Every filter of the runs page has an index that serves the page's sort (created_at, then id): the
planner walks it in order and stops after a page, with no sort of every matching run, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from server.db import Database
from server.store import experiments, runs
from trainer.config import TrainConfig

FILTERS = {
    "status": runs.RunFilters(status=["succeeded"]),
    "experiment": runs.RunFilters(experiment="e1"),
    "method": runs.RunFilters(method="miles"),
    "dataset": runs.RunFilters(dataset="mfeat"),
    "fusion": runs.RunFilters(fusion="late"),
}


def page_statement(database: Database, filters: runs.RunFilters, sort: str) -> tuple[str, object]:
    """The SELECT of one page of the runs list (the statement paginate sends), with its parameters."""
    sent: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if "ORDER BY run.created_at" in statement:
            sent.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        with database.transaction(write=False) as session:
            runs.page(session=session, filters=filters, sort=sort, limit=50)
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert len(sent) == 1, sent
    return sent[0]


def plan(database: Database, statement: str, parameters: object) -> str:
    with database.engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        if database.dialect == "postgresql":
            cursor.execute("SET enable_sort = off")  # a Sort then means no index can give the order
            cursor.execute("EXPLAIN " + statement, parameters)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        rows = cursor.fetchall()
        connection.rollback()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.fixture
def some_runs(database: Database) -> None:
    with database.transaction() as session:
        experiment = experiments.ensure(session=session, name="e1")
        for n in range(40):
            run = runs.create(session=session, config=TrainConfig(dataset="mfeat", epochs=3), execute=True)
            run.fusion, run.experiment = ("late", experiment) if n % 2 else ("early", None)
    with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            connection.execute(text("ANALYZE run"))


@pytest.mark.parametrize("sort", ["-created_at", "created_at"])
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_a_filtered_page_walks_an_index_in_the_sort_order(database, some_runs, name, sort):
    found = plan(database, *page_statement(database, FILTERS[name], sort))
    if database.dialect == "postgresql":
        assert "Sort" not in found.replace("Sort Key", ""), found
        assert "Index" in found, found
    else:
        assert "TEMP B-TREE" not in found, found
        assert "USING INDEX ix_run_" in found, found
