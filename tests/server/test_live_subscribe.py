"""A stream that gives up waiting for the Redis subscription leaves no task behind."""

from __future__ import annotations

import asyncio

from server.live import RedisNotices
from tests.conftest import free_port


def test_a_timed_out_wait_for_the_subscription_leaves_only_the_listener(monkeypatch):
    monkeypatch.setattr(RedisNotices, "SUBSCRIBE_WAIT", 0.05)

    async def scenario() -> set[str]:
        notices = RedisNotices(f"redis://127.0.0.1:{free_port()}/0")  # nobody listens there: never subscribed
        try:
            for run_id in range(5):
                async with notices.watch(run_id):
                    pass
            await asyncio.sleep(0)
            others = asyncio.all_tasks() - {asyncio.current_task()}
            return {task.get_coro().__qualname__ for task in others}
        finally:
            await notices.close()

    assert asyncio.run(scenario()) == {"RedisNotices._listen"}
