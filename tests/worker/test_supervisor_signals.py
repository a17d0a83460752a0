"""A second Ctrl-C kills the worker processes at once; the signal handler itself only records it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from server.settings import Settings
from worker.supervisor import ProcessSpec, Supervisor

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"


@pytest.fixture
def supervisor(tmp_path):
    supervisor = Supervisor(Settings(home=tmp_path, redis_url=None), [ProcessSpec("cpu0", "cpu", "")], grace=60)
    child = supervisor.children[0]
    # A process that ignores SIGTERM, as a worker busy in a long warm shutdown would.
    child.process = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
    assert child.process.stdout is not None and child.process.stdout.readline() == b"ready\n"
    yield supervisor
    if child.process is not None and child.process.poll() is None:
        child.process.kill()
        child.process.wait()
    supervisor.publisher.close()
    supervisor.database.dispose()


def test_the_handler_only_counts_and_the_stop_kills_on_the_second_signal(supervisor, caplog):
    previous = signal.signal(signal.SIGINT, supervisor._on_signal)
    try:
        supervisor._on_signal(signal.SIGINT, None)  # the first Ctrl-C, which ended the main loop
        assert supervisor.children[0].process.poll() is None  # nothing killed from the handler
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()  # the second, mid-grace
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, "miles.worker"):
            supervisor._stop()
        took = time.monotonic() - started
    finally:
        signal.signal(signal.SIGINT, previous)
    assert took < 10, f"the second signal did not cut the 60 s grace short ({took:.1f} s)"
    assert supervisor.children[0].process.poll() == -signal.SIGKILL
    assert "second SIGINT: killing worker process cpu0" in caplog.text


def test_the_grace_period_ends_in_a_kill_without_a_second_signal(supervisor, caplog):
    supervisor.grace = 0.5
    supervisor._on_signal(signal.SIGTERM, None)
    with caplog.at_level(logging.WARNING, "miles.worker"):
        supervisor._stop()
    assert supervisor.children[0].process.poll() == -signal.SIGKILL
    assert "grace period of 0.5 s over: killing worker process cpu0" in caplog.text
