"""Circuit breakers: ask before calling a dependency, report how the call went."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .errors import BreakerOpen, BudgetDenied, ControlPlaneError, ControlPlaneUnavailable
from .models import BreakerStatus, CheckResult

if TYPE_CHECKING:
    from .client import ControlPlane

log = logging.getLogger("controlplane_client")

P = ParamSpec("P")
R = TypeVar("R")

ERROR_TEXT_LIMIT = 512
"""The server cuts error texts to 512 characters; so does the client before sending."""

# How long to tell a refused caller to wait when the breaker gives no next_retry (forced
# open, or half-open with every trial permit out).
DEFAULT_RETRY_AFTER = 1.0


class Breakers:
    """``cp.breakers``: the three NATS verbs, for callers that want them directly."""

    def __init__(self, cp: ControlPlane):
        self._cp = cp

    async def check(self, name: str) -> CheckResult:
        """May a call go through? ``trial=True`` is a half-open trial permit: its outcome
        must be reported. A retried check (after a timeout) may take a second permit; an
        unused permit is handed out again after the breaker's ``open_seconds``."""
        answer = await self._cp.request(self._cp.subject("breaker", "check"), {"name": name})
        return CheckResult(
            allowed=bool(answer.get("allowed")),
            state=str(answer.get("state", "CLOSED")),
            trial=bool(answer.get("trial", False)),
        )

    async def record(self, name: str, *, success: bool, error: str | None = None) -> BreakerStatus:
        """Reports one call's outcome. Not idempotent on the server (a report retried after
        a lost reply may count twice), so it is retried only when surely not received."""
        body: dict[str, Any] = {"name": name, "outcome": "success" if success else "failure"}
        if error is not None and not success:
            body["error"] = error[:ERROR_TEXT_LIMIT]
        answer = await self._cp.request(
            self._cp.subject("breaker", "record"), body, idempotent=False
        )
        return BreakerStatus.from_body(answer)

    async def status(self, name: str) -> BreakerStatus:
        answer = await self._cp.request(self._cp.subject("breaker", "status"), {"name": name})
        return BreakerStatus.from_body(answer)


@dataclass(frozen=True)
class _Permit:
    guard: int  # id() of the Breaker that took it
    report: bool  # False: no outcome to report (DISABLED, or allowed by fail_open)
    trial: bool


# The permits of the guards entered in this task (contextvars are per task), innermost last.
_permits: ContextVar[tuple[_Permit, ...]] = ContextVar("controlplane_breaker_permits", default=())


class Breaker:
    """Guards calls to one dependency. Use as ``async with cp.breaker("openai_api"):`` or
    as a decorator ``@cp.breaker("openai_api")`` on an ``async def``.

    Entering asks the control plane (``breaker.check``); a refusal raises
    :class:`BreakerOpen` with ``next_retry`` and the body does not run. Leaving reports the
    outcome (``breaker.record``):

    - no exception: success;
    - an exception for which ``is_failure(exc)`` is true — by default an instance of
      ``failure_on`` (``Exception``) and not of ``exclude`` — a failure, with the
      exception's text; any other exception counts as a success (the dependency
      answered; the error is the caller's);
    - cancellation, ``KeyboardInterrupt`` and errors of this library raised inside the
      block (``BreakerOpen`` of a nested breaker, ``BudgetDenied``): nothing is reported,
      the dependency was not asked. A half-open trial permit left unreported that way is
      handed out again by the server after the breaker's ``open_seconds``.

    Half-open trial permits are respected: only callers the server gave a permit to go
    through, and each reports its outcome. ``DISABLED`` breakers allow every call and
    nothing is reported (the server would ignore it).

    A failed report is logged, never raised: the call itself already happened.
    ``fail_open=True`` lets calls through when no control plane answers the check (the
    default raises :class:`ControlPlaneUnavailable`).

    The same guard can be entered by many tasks at once.
    """

    def __init__(
        self,
        cp: ControlPlane,
        name: str,
        *,
        failure_on: tuple[type[BaseException], ...] = (Exception,),
        exclude: tuple[type[BaseException], ...] = (),
        is_failure: Callable[[BaseException], bool] | None = None,
        fail_open: bool = False,
    ):
        self._cp = cp
        self.name = name
        self.failure_on = failure_on
        self.exclude = exclude
        self._is_failure = is_failure
        self.fail_open = fail_open

    # -- the guard ---------------------------------------------------------------------------

    async def __aenter__(self) -> Breaker:
        permit = await self.acquire()
        _permits.set((*_permits.get(), permit))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = list(_permits.get())
        mine = [i for i, p in enumerate(stack) if p.guard == id(self)]
        if not mine:
            return
        permit = stack.pop(mine[-1])
        _permits.set(tuple(stack))
        await self.report(permit, exc)

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"@breaker({self.name!r}) guards async functions; for plain functions use "
                "the synchronous client (controlplane_client.SyncControlPlane)"
            )

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            async with self:
                return await fn(*args, **kwargs)

        return guarded

    # -- the steps, for callers that do not use the guard ---------------------------------------

    async def acquire(self) -> _Permit:
        """The check: a permit, or :class:`BreakerOpen`."""
        try:
            check = await self._cp.breakers.check(self.name)
        except ControlPlaneUnavailable:
            if self.fail_open:
                log.warning("breaker %s: no control plane answered; allowed (fail_open)", self.name)
                return _Permit(guard=id(self), report=False, trial=False)
            raise
        if not check.allowed:
            raise await self._refusal(check.state)
        return _Permit(guard=id(self), report=check.state != "DISABLED", trial=check.trial)

    async def _refusal(self, state: str) -> BreakerOpen:
        """The exception for a refused check, with the time the breaker may let calls in."""
        next_retry: datetime | None = None
        try:
            status = await self._cp.breakers.status(self.name)
            next_retry = status.next_retry
            state = status.state if status.state != "CLOSED" else state
        except ControlPlaneError as error:
            log.debug("breaker %s: status after a refusal failed: %s", self.name, error)
        retry_after = DEFAULT_RETRY_AFTER
        if next_retry is not None:
            retry_after = max(0.0, (next_retry - datetime.now(timezone.utc)).total_seconds())
        return BreakerOpen(self.name, state=state, next_retry=next_retry, retry_after=retry_after)

    def counts_as_failure(self, exc: BaseException) -> bool | None:
        """True: a failure; False: a success; None: not an outcome (nothing reported)."""
        if not isinstance(exc, Exception) or isinstance(exc, asyncio.CancelledError):
            return None
        if isinstance(exc, (BreakerOpen, BudgetDenied)):
            return None
        if self._is_failure is not None:
            return self._is_failure(exc)
        if isinstance(exc, self.exclude):
            return False
        return isinstance(exc, self.failure_on)

    async def report(self, permit: _Permit, exc: BaseException | None) -> None:
        if not permit.report:
            return
        failure = False if exc is None else self.counts_as_failure(exc)
        if failure is None:
            if permit.trial:
                log.info(
                    "breaker %s: trial call ended without an outcome (%s); the permit is "
                    "handed out again after open_seconds",
                    self.name,
                    type(exc).__name__,
                )
            return
        text = f"{type(exc).__name__}: {exc}" if failure and exc is not None else None

        async def send() -> None:
            await self._cp.breakers.record(self.name, success=not failure, error=text)

        try:
            # Shielded: a cancellation of the caller does not lose an outcome.
            await asyncio.shield(self._cp.spawn(send()))
        except (ControlPlaneError, asyncio.CancelledError) as error:
            log.warning(
                "breaker %s: could not report %s: %s",
                self.name,
                "a failure" if failure else "a success",
                error,
            )
