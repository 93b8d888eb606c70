"""Breakers against a real control plane: opens after the configured failures, refuses
with BreakerOpen, lets exactly the permitted trial calls through when half-open."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from controlplane_client import BreakerOpen, ControlPlane

from .conftest import Server


class Upstream5xx(Exception):
    pass


class BadPrompt(Exception):
    pass


def configure(server: Server, name: str, **config: int) -> None:
    server.http("PUT", f"/circuit-breakers/{name}", config)


async def test_breaker_opens_after_failures_and_raises(
    server: Server, cp: ControlPlane, ids: str
) -> None:
    name = f"api_{ids}"
    configure(server, name, failure_threshold=3, open_seconds=30, half_open_max_calls=1)
    calls = 0

    @cp.breaker(name)
    async def call_model() -> str:
        nonlocal calls
        calls += 1
        raise Upstream5xx("502 from upstream")

    for _ in range(3):
        with pytest.raises(Upstream5xx):
            await call_model()
    assert calls == 3
    with pytest.raises(BreakerOpen) as refused:
        await call_model()
    assert calls == 3  # the call was not made
    assert refused.value.state == "OPEN"
    assert refused.value.next_retry is not None
    assert 20 < refused.value.retry_after <= 31
    assert refused.value.next_retry > datetime.now(timezone.utc)
    status = await cp.breakers.status(name)
    assert (status.state, status.failures) == ("OPEN", 3)
    assert status.last_error is not None
    assert "Upstream5xx: 502 from upstream" in status.last_error

    # The context-manager form refuses as well.
    with pytest.raises(BreakerOpen):
        async with cp.breaker(name):
            raise AssertionError("not reached")


async def test_half_open_trial_permits_are_respected(
    server: Server, cp: ControlPlane, ids: str
) -> None:
    name = f"api_{ids}"
    # open_seconds is also how long an unanswered permit is held before it is handed out
    # again: 2 s leaves the refused check below room on a slow machine.
    configure(server, name, failure_threshold=1, open_seconds=2, half_open_max_calls=1)
    with pytest.raises(Upstream5xx):
        async with cp.breaker(name):
            raise Upstream5xx("down")
    with pytest.raises(BreakerOpen):
        async with cp.breaker(name):
            pass
    await asyncio.sleep(2.3)  # open_seconds: the next check may go half-open

    trial_running = asyncio.Event()
    release_trial = asyncio.Event()

    async def trial() -> None:
        async with cp.breaker(name):
            trial_running.set()
            await release_trial.wait()

    first = asyncio.create_task(trial())
    await asyncio.wait_for(trial_running.wait(), 10)
    # One permit, and it is out: every other caller is refused meanwhile.
    with pytest.raises(BreakerOpen) as refused:
        async with cp.breaker(name):
            raise AssertionError("not reached")
    assert refused.value.state == "HALF_OPEN"
    release_trial.set()
    await first
    status = await cp.breakers.status(name)
    assert status.state == "CLOSED"  # the trial's success closed it
    async with cp.breaker(name):
        pass


async def test_which_exceptions_count_is_configurable(
    server: Server, cp: ControlPlane, ids: str
) -> None:
    name = f"api_{ids}"
    configure(server, name, failure_threshold=2, open_seconds=30)
    guard = cp.breaker(name, exclude=(BadPrompt,))
    for _ in range(3):
        with pytest.raises(BadPrompt):
            async with guard:
                raise BadPrompt("400: the caller's fault")
    assert (await cp.breakers.status(name)).state == "CLOSED"

    only_timeouts = cp.breaker(name, failure_on=(TimeoutError,))
    with pytest.raises(KeyError):
        async with only_timeouts:
            raise KeyError("not a dependency failure")
    assert (await cp.breakers.status(name)).failures == 0
    for _ in range(2):
        with pytest.raises(TimeoutError):
            async with only_timeouts:
                raise TimeoutError
    assert (await cp.breakers.status(name)).state == "OPEN"


async def test_one_guard_shared_by_concurrent_tasks(
    server: Server, cp: ControlPlane, ids: str
) -> None:
    name = f"api_{ids}"
    guard = cp.breaker(name)
    results: list[int] = []

    @guard
    async def call(i: int) -> int:
        await asyncio.sleep(0.01)
        if i % 10 == 0:
            raise Upstream5xx(str(i))
        return i

    outcomes = await asyncio.gather(*(call(i) for i in range(30)), return_exceptions=True)
    results = [o for o in outcomes if isinstance(o, int)]
    assert len(results) == 27
    assert (await cp.breakers.status(name)).state == "CLOSED"
