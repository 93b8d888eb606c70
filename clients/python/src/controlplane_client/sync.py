"""A synchronous facade for scripts and threaded code: the asyncio client on an event loop
of its own, in a background thread."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from .breaker import Breaker, _Permit
from .budget import Reservation
from .client import ControlPlane
from .models import BreakerStatus, BudgetState, CheckResult, CommitResult, DlqEntry, ReleaseResult

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class SyncControlPlane:
    """Same options as :class:`ControlPlane`; blocking calls.

    ::

        with SyncControlPlane("nats://127.0.0.1:4222", user_credentials="batch.creds") as cp:
            with cp.budget.reserve("acme", "chat", "task-1", "gpt-4o", 500) as r:
                with cp.breaker("openai_api"):
                    r.record(call_model())
    """

    def __init__(self, servers: str | Sequence[str] = "nats://127.0.0.1:4222", **kwargs: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="controlplane-client", daemon=True
        )
        self._thread.start()
        self.aio = ControlPlane(servers, **kwargs)
        """The asyncio client underneath (its coroutines run on this facade's loop)."""
        try:
            self._run(self.aio.open())
        except BaseException:
            self._stop_loop()
            raise
        self.budget = SyncBudgets(self)
        self.breakers = SyncBreakers(self)
        self.dlq = SyncDeadLetters(self)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self.aio.close())
        finally:
            self._stop_loop()

    def __enter__(self) -> SyncControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def breaker(
        self,
        name: str,
        *,
        failure_on: tuple[type[BaseException], ...] = (Exception,),
        exclude: tuple[type[BaseException], ...] = (),
        is_failure: Callable[[BaseException], bool] | None = None,
        fail_open: bool = False,
    ) -> SyncBreaker:
        """``with cp.breaker("x"):`` or ``@cp.breaker("x")`` on a plain function."""
        return SyncBreaker(
            self,
            self.aio.breaker(
                name,
                failure_on=failure_on,
                exclude=exclude,
                is_failure=is_failure,
                fail_open=fail_open,
            ),
        )


class SyncBudgets:
    def __init__(self, cp: SyncControlPlane):
        self._cp = cp

    def reserve(
        self,
        tenant_id: str,
        project_id: str,
        task_id: str,
        model: str,
        estimated_tokens: int,
        *,
        ttl_seconds: int | None = None,
    ) -> SyncReservation:
        """As :meth:`Budgets.reserve`, with ``with``."""
        return SyncReservation(
            self._cp,
            self._cp.aio.budget.reserve(
                tenant_id, project_id, task_id, model, estimated_tokens, ttl_seconds=ttl_seconds
            ),
        )

    def commit(self, reservation_id: str, actual_tokens: int) -> CommitResult:
        return self._cp._run(self._cp.aio.budget.commit(reservation_id, actual_tokens))

    def release(self, reservation_id: str) -> ReleaseResult:
        return self._cp._run(self._cp.aio.budget.release(reservation_id))

    def state(self, tenant_id: str, project_id: str) -> BudgetState:
        return self._cp._run(self._cp.aio.budget.state(tenant_id, project_id))


class SyncReservation:
    """The blocking twin of :class:`Reservation` (same attributes, via ``inner``)."""

    def __init__(self, cp: SyncControlPlane, inner: Reservation):
        self._cp = cp
        self.inner = inner

    def __enter__(self) -> SyncReservation:
        self._cp._run(self.inner.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cp._run(self.inner.__aexit__(exc_type, exc, tb))

    def record(self, actual_tokens: int) -> None:
        self.inner.record(actual_tokens)

    def commit(self, actual_tokens: int | None = None) -> CommitResult:
        return self._cp._run(self.inner.commit(actual_tokens))

    def release(self) -> ReleaseResult:
        return self._cp._run(self.inner.release())

    @property
    def reservation_id(self) -> str:
        return self.inner.reservation_id

    @property
    def allocated(self) -> int:
        return self.inner.allocated

    @property
    def existing(self) -> bool:
        return self.inner.existing

    @property
    def seconds_left(self) -> float:
        return self.inner.seconds_left

    @property
    def result(self) -> CommitResult | ReleaseResult | None:
        return self.inner.result


class SyncBreaker:
    """The blocking twin of :class:`Breaker`; its permits are kept per thread."""

    def __init__(self, cp: SyncControlPlane, inner: Breaker):
        self._cp = cp
        self.inner = inner
        self._local = threading.local()

    def _stack(self) -> list[_Permit]:
        stack: list[_Permit] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = []
            self._local.stack = stack
        return stack

    def __enter__(self) -> SyncBreaker:
        self._stack().append(self._cp._run(self.inner.acquire()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        permit = self._stack().pop()
        self._cp._run(self.inner.report(permit, exc))

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return fn(*args, **kwargs)

        return guarded


class SyncBreakers:
    def __init__(self, cp: SyncControlPlane):
        self._cp = cp

    def check(self, name: str) -> CheckResult:
        return self._cp._run(self._cp.aio.breakers.check(name))

    def record(self, name: str, *, success: bool, error: str | None = None) -> BreakerStatus:
        return self._cp._run(self._cp.aio.breakers.record(name, success=success, error=error))

    def status(self, name: str) -> BreakerStatus:
        return self._cp._run(self._cp.aio.breakers.status(name))


class SyncDeadLetters:
    def __init__(self, cp: SyncControlPlane):
        self._cp = cp

    def capture(
        self,
        original_subject: str,
        payload: Any,
        error: str,
        attempts: int,
        *,
        headers: Mapping[str, str | Sequence[str]] | None = None,
        id: str | None = None,
        encoding: str | None = None,
        stream: str | None = None,
        consumer: str | None = None,
        stream_seq: int | None = None,
    ) -> DlqEntry:
        return self._cp._run(
            self._cp.aio.dlq.capture(
                original_subject,
                payload,
                error,
                attempts,
                headers=headers,
                id=id,
                encoding=encoding,
                stream=stream,
                consumer=consumer,
                stream_seq=stream_seq,
            )
        )
