"""Life-cycle notes of a run (``run.requeued``, ``run.failed``, ...): one of each kind per attempt, with the attempt."""

from __future__ import annotations

from server.store import events, leases, runs
from trainer.config import TrainConfig


def test_a_note_carries_the_attempt_and_its_data_once_per_attempt(database):
    with database.transaction() as session:
        run = runs.create(session=session, config=TrainConfig(dataset="mfeat", epochs=5, device="cpu"), execute=True)
        assert runs.claim(session=session, run_id=run.id, worker="host:1")
        session.refresh(run)
        for message in ("first", "again"):
            leases.note(session=session, run=run, kind="run.failed", message=message, data={"error": "boom"})
    with database.transaction(write=False) as session:
        [note] = events.page(session=session, run_id=run.id)
    assert (note.kind, note.message, note.key, note.step) == ("run.failed", "first", "run.failed#1", 0)
    assert note.data == {"attempt": 1, "error": "boom"}
