"""No control plane on the subjects: typed, retried within the deadline, then raised."""

from __future__ import annotations

import time

import pytest

from controlplane_client import ControlPlane, ControlPlaneUnavailable, RetryableError

from .conftest import Server


async def test_no_control_plane_raises_after_the_retry_deadline(server: Server) -> None:
    creds = server.creds("pytest", prefix="nobody-listens")
    async with ControlPlane(
        server.nats_url, prefix="nobody-listens", user_credentials=creds, retry_deadline=1.0
    ) as cp:
        started = time.monotonic()
        with pytest.raises(ControlPlaneUnavailable) as error:
            async with cp.budget.reserve("t", "p", "task", "m", 1):
                pass
        assert 0.5 < time.monotonic() - started < 5
        assert isinstance(error.value, RetryableError)
        assert not error.value.maybe_applied  # no responders: nothing was sent anywhere
        with pytest.raises(ControlPlaneUnavailable):
            async with cp.breaker("dep"):
                pass

        calls = 0

        @cp.breaker("dep", fail_open=True)
        async def call() -> None:
            nonlocal calls
            calls += 1

        await call()
        assert calls == 1
