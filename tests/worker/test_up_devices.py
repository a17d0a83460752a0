"""`miles up` always runs a CPU worker process beside the GPUs unless told not to: else device 'cpu' runs wait forever."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from worker import cli
from worker.up import devices, up_command


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(cli, "cuda_device_count", lambda: 2)


def test_by_default_every_gpu_and_the_cpu(two_gpus):
    assert devices(None, cpu=True) == ([0, 1], True)


def test_named_gpus_keep_the_cpu_process(two_gpus):
    assert devices("1", cpu=True) == ([1], True)


def test_the_cpu_process_can_be_left_out_and_the_gpus_too(two_gpus):
    assert devices(None, cpu=False) == ([0, 1], False)
    assert devices("none", cpu=True) == ([], True)


def test_a_machine_without_a_gpu_trains_on_the_cpu(monkeypatch):
    monkeypatch.setattr(cli, "cuda_device_count", lambda: 0)
    assert devices(None, cpu=True) == ([], True)
    with pytest.raises(click.UsageError, match="nothing to train on"):
        devices(None, cpu=False)


def test_the_flags_default_to_a_cpu_process():
    options = {option.name: option for option in up_command.params}
    assert options["cpu"].default is True and "--no-cpu" in options["cpu"].secondary_opts
    result = CliRunner().invoke(up_command, ["--gpus", "none", "--no-cpu"])
    assert result.exit_code == 2 and "nothing to train on" in result.output
