"""The workers registry on both backends: registration, heartbeats, lost workers, pruning, served queues."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from server.models import Worker, utcnow
from server.store import runs, workers
from tests.services import tiny_config
from trainer.config import TrainConfig

FACTS = {"host": "box", "device": "cpu", "device_name": "Some CPU", "gpu_memory_mib": None, "cuda": None,
         "torch": "2.13.0", "version": "0.1.0"}


def registration(name: str = "box:1", queue: str = "cpu", process: str = "cpu0") -> workers.Registration:
    return workers.Registration(name=name, host="box", pid=int(name.split(":")[1]), process=process, queue=queue, facts=FACTS)


def expire(database, name: str, ago: timedelta) -> None:
    """Pretend worker ``name`` last beat ``ago`` past its timeout."""
    with database.transaction() as session:
        session.execute(update(Worker).where(Worker.name == name).values(expires_at=utcnow() - ago))


def listed(database) -> list[tuple[str, str]]:
    with database.transaction(write=False) as session:
        return [(item.worker.name, "lost" if item.lost else item.worker.state) for item in workers.listing(session=session)]


def test_a_registered_worker_is_listed_idle_until_a_beat_says_it_is_busy(database):
    with database.transaction() as session:
        workers.register(session=session, worker=registration(), timeout=30)
        run = runs.create(session=session, config=TrainConfig.model_validate(tiny_config()), execute=True, name="the run")
        run_id = run.id
    assert listed(database) == [("box:1", "idle")]

    with database.transaction() as session:
        assert workers.beat(session=session, name="box:1", timeout=30, run_id=run_id, reading=(1.0, 50.0, None))

    with database.transaction(write=False) as session:
        [item] = workers.listing(session=session)
    assert (item.worker.state, item.worker.run_id, item.run_name) == ("busy", run_id, "the run")
    assert item.worker.recent == [[1.0, 50.0, None]]


def test_live_workers_come_first_busy_before_idle_then_the_lost(database):
    with database.transaction() as session:
        for name in ("box:1", "box:2", "box:3"):
            workers.register(session=session, worker=registration(name), timeout=30)
        run_id = runs.create(session=session, config=TrainConfig.model_validate(tiny_config()), execute=True).id
        workers.assign(session=session, name="box:3", run_id=run_id)
    expire(database, "box:1", timedelta(seconds=1))

    assert listed(database) == [("box:3", "busy"), ("box:2", "idle"), ("box:1", "lost")]


def test_recent_readings_keep_only_the_last_sixty(database):
    with database.transaction() as session:
        workers.register(session=session, worker=registration(), timeout=30)
        for second in range(65):
            workers.beat(session=session, name="box:1", timeout=30, run_id=None, reading=(float(second), 1.0, 2.0))
        recent = session.scalar(select(Worker.recent))
    assert len(recent) == workers.RECENT_SAMPLES == 60 and recent[0][0] == 5.0 and recent[-1][0] == 64.0


def test_a_worker_lost_for_more_than_a_day_is_pruned_and_unlisted_while_a_recent_loss_stays(database):
    with database.transaction() as session:
        workers.register(session=session, worker=registration("box:1"), timeout=30)
        workers.register(session=session, worker=registration("box:2"), timeout=30)
    expire(database, "box:1", timedelta(days=1, minutes=1))
    expire(database, "box:2", timedelta(hours=23))
    assert listed(database) == [("box:2", "lost")]

    with database.transaction() as session:
        assert workers.prune(session=session) == 1
        assert session.scalars(select(Worker.name)).all() == ["box:2"]


def test_a_beat_for_a_pruned_worker_says_so_and_a_clean_stop_leaves_the_list(database):
    with database.transaction() as session:
        assert workers.beat(session=session, name="box:9", timeout=30, run_id=None) is False
        workers.register(session=session, worker=registration(), timeout=30)
        workers.unregister(session=session, name="box:1")
    assert listed(database) == []


def test_serving_names_the_queues_a_live_worker_consumes(database):
    with database.transaction() as session:
        workers.register(session=session, worker=registration("box:1", queue="cpu"), timeout=30)
        workers.register(session=session, worker=registration("box:2", queue="gpu", process="gpu0"), timeout=30)
    expire(database, "box:2", timedelta(seconds=1))

    with database.transaction(write=False) as session:
        assert workers.serving(session=session, queues={"cpu", "gpu"}) == {"cpu"}
        assert workers.serving(session=session, queues=set()) == set()


def test_the_served_queues_are_read_from_the_index_not_by_a_scan(database):
    statement = workers.serving_query({"cpu", "gpu"}, utcnow())
    with database.transaction() as session:
        connection = session.connection()
        compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
        if database.dialect == "postgresql":
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an empty table: can the index serve it?
            rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).all()
        else:
            values = tuple(compiled.params[name] for name in compiled.positiontup)
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values).all()
    plan = "\n".join(str(row[-1]) for row in rows)
    assert "ix_worker_queue_expires_at" in plan, plan
    assert "Seq Scan" not in plan and "SCAN worker" not in plan, plan
