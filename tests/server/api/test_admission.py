"""The queue in front of the database: slots, turns, and the 503 of a request that waited too long."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi import HTTPException

from server.api.admission import Admission


def soon(seconds: float = 0.2) -> float:
    return time.monotonic() + seconds


def test_a_request_that_finds_no_slot_in_time_gets_503_with_retry_after():
    admission = Admission(slots=1, wait=0.2)

    async def scenario() -> HTTPException:
        async with admission.slot(soon()):
            with pytest.raises(HTTPException) as refused:
                async with admission.slot(soon(0.05)):
                    pass
        return refused.value

    refused = asyncio.run(scenario())
    assert refused.status_code == 503 and refused.headers["Retry-After"].isdigit()
    assert "busy" in refused.detail and "retry" in refused.detail


def test_a_freed_slot_goes_to_the_request_waiting_for_it():
    admission = Admission(slots=1, wait=1)
    order: list[str] = []

    async def request(name: str, hold: float) -> None:
        async with admission.slot(soon(1)):
            order.append(name)
            await asyncio.sleep(hold)

    async def scenario() -> None:
        await asyncio.gather(request("first", 0.05), request("second", 0))

    asyncio.run(scenario())
    assert order == ["first", "second"]


def test_writers_of_one_key_take_turns_while_other_keys_go_at_once():
    admission = Admission(slots=10, wait=1)
    inside: dict[str, int] = {"run 1": 0, "run 2": 0}
    most: dict[str, int] = {"run 1": 0, "run 2": 0}

    async def write(key: str) -> None:
        async with admission.turn(key, soon(1)):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0.01)
            inside[key] -= 1

    async def scenario() -> None:
        await asyncio.gather(*(write(key) for key in ("run 1", "run 2") for _ in range(5)))

    asyncio.run(scenario())
    assert most == {"run 1": 1, "run 2": 1} and all(count == 0 for count in inside.values())
    # And nothing is kept once nobody writes the key: keys are run ids and token ids, unbounded over time.
    assert all(not queues.turns for queues in admission._loops.values())


def test_a_turn_not_given_in_time_is_503_and_frees_its_place():
    admission = Admission(slots=10, wait=0.1)

    async def scenario() -> None:
        async with admission.turn("run 1", soon(1)):
            with pytest.raises(HTTPException) as refused:
                async with admission.turn("run 1", soon(0.05)):
                    pass
            assert refused.value.status_code == 503
        async with admission.turn("run 1", soon(0.05)):  # the key is free again
            pass

    asyncio.run(scenario())
