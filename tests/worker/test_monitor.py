"""A worker process's monitor thread, on both backends: its heartbeat in the registry, the machine a run
records, and the system metrics written for the run it trains."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from server.models import Metric, Worker
from server.store import runs
from server.store.workers import Registration
from tests.services import wait_until
from tests.worker.conftest import WORKER, RecordingPublisher, claimed_run, submit
from trainer.system import MachineFacts, SystemProbe
from worker import tasks
from worker.monitor import WorkerMonitor, beat_interval

FACTS = MachineFacts(host="box", device="cpu", device_name="Some CPU", gpu_memory_mib=None, cuda=None,
                     torch="2.13.0", version="0.1.0")


def monitor_of(database, publisher=None, *, timeout: float = 4.0, interval: float = 1.0) -> WorkerMonitor:
    registration = Registration(name=WORKER, host="box", pid=1, process="cpu0", queue="cpu", facts=FACTS.as_dict())
    return WorkerMonitor(
        database=database, publisher=publisher or RecordingPublisher(), registration=registration, probe=SystemProbe(),
        timeout=timeout, interval=interval,
    )


def worker_row(database) -> Worker | None:
    with database.transaction(write=False) as session:
        return session.scalar(select(Worker).where(Worker.name == WORKER))


def system_points(database, run_id: int) -> list[tuple[str, int]]:
    with database.transaction(write=False) as session:
        return session.execute(
            select(Metric.key, Metric.step).where(Metric.run_id == run_id, Metric.key.like("sys/%")).order_by(Metric.step)
        ).all()


def test_four_heartbeats_fit_in_the_timeout_and_at_most_five_seconds_pass_between_two():
    assert (beat_interval(2), beat_interval(60), beat_interval(0.5)) == (0.5, 5.0, 0.25)


def test_a_monitored_worker_is_registered_while_it_runs_and_leaves_the_list_when_it_stops(database):
    with monitor_of(database):
        row = worker_row(database)
        assert row is not None and (row.state, row.queue, row.facts["device_name"]) == ("idle", "cpu", "Some CPU")
        first_beat = row.heartbeat_at
        wait_until(lambda: worker_row(database).heartbeat_at > first_beat, 5, "a second heartbeat")
    assert worker_row(database) is None


def test_a_watched_run_gets_system_points_stepped_in_seconds_and_its_worker_shows_busy(database):
    run_id = claimed_run(database)
    with database.transaction(write=False) as session:
        started = runs.get(session=session, run_id=run_id).started_at
    publisher = RecordingPublisher()
    with monitor_of(database, publisher) as monitor:
        monitor.watch(run_id, started)
        monitor.count_samples(lambda: 0)
        wait_until(lambda: len({step for _, step in system_points(database, run_id)}) >= 2, 10, "two system samples")
        row = worker_row(database)
        assert (row.state, row.run_id) == ("busy", run_id) and row.recent
        monitor.unwatch()
        wait_until(lambda: worker_row(database).state == "idle", 5, "the worker idle again")

    points = system_points(database, run_id)
    assert {"sys/cpu_percent", "sys/memory_mib", "sys/samples_per_s"} <= {key for key, _ in points}
    steps = sorted({step for _, step in points})
    assert steps[0] == 1 and steps[1] == 2  # one second after the start, then every second
    assert {"type": "system", "run": run_id, "step": 1} in publisher.notices


def test_a_run_no_longer_held_by_this_worker_gets_no_more_system_points(database):
    run_id = submit(database)  # queued, not claimed by WORKER
    with database.transaction(write=False) as session:
        created = runs.get(session=session, run_id=run_id).created_at
    with monitor_of(database) as monitor:
        monitor.watch(run_id, created)
        wait_until(lambda: worker_row(database).recent, 10, "a system sample")
    assert system_points(database, run_id) == []


def test_a_trained_run_records_the_machine_and_worker_it_ran_on(database, context):
    run_id = submit(database, epochs=2)
    with monitor_of(database) as monitor:
        job_context = dataclasses.replace(context(), monitor=monitor)
        assert tasks.Job(job_context, run_id).run() == "succeeded"
    with database.transaction(write=False) as session:
        run = runs.get(session=session, run_id=run_id)
    assert run.machine == {"worker": WORKER, **FACTS.as_dict()}
