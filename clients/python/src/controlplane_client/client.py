"""The asyncio client: one NATS connection, request/reply with typed errors and retries."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from .breaker import Breaker, Breakers
from .budget import Budgets
from .dlq import DeadLetters
from .errors import ControlPlaneUnavailable, InternalError, RetryableError, error_from_body

log = logging.getLogger("controlplane_client")


@dataclass(frozen=True)
class Settings:
    """How requests behave. Every field can be passed to :class:`ControlPlane`."""

    prefix: str = "cp"
    """First token of every subject (``NATS_SUBJECT_PREFIX`` of the control plane)."""
    service: str | None = None
    """The service's NATS identity (``controlplane service add NAME``): commands go to
    ``<prefix>.cmd.<service>.<area>.<verb>``, which only that identity may publish on, and
    the events record it as the actor. Read from ``user_credentials`` when not given."""
    request_timeout: float = 5.0
    """Seconds one request waits for its reply."""
    retry_deadline: float = 30.0
    """Seconds an idempotent request keeps being retried on retryable errors (no
    responders, timeouts, ``busy``/``unavailable``). 0 disables retries."""
    settle_deadline: float = 60.0
    """Seconds the commit or release at the end of a ``reserve`` block keeps being retried:
    longer than ``retry_deadline`` because a reservation left open holds budget until its
    TTL."""
    backoff_initial: float = 0.05
    backoff_max: float = 2.0


class ControlPlane:
    """A connection to the control plane over NATS.

    ::

        async with ControlPlane("nats://127.0.0.1:4222", user_credentials="summariser.creds") as cp:
            async with cp.budget.reserve("acme", "chat", task_id, "gpt-4o", 2_000) as r:
                async with cp.breaker("openai_api"):
                    answer = await call_model(...)
                r.record(answer.usage.total_tokens)

    The control plane's NATS runs with authentication: connect with the service's creds
    file (``user_credentials``, made by ``controlplane service add``); the service name is
    read from it. Replies arrive under the service's own inbox prefix
    ``<prefix>.reply.<service>`` (set as nats-py's ``inbox_prefix``; a client handed over
    with ``nc=`` must use it too).

    NATS options are passed through to ``nats.connect``: ``user``/``password``, ``token``,
    ``nkeys_seed`` / ``nkeys_seed_str``, ``user_credentials``, ``tls``, plus the reconnect
    settings (``max_reconnect_attempts``, default -1 = forever; ``reconnect_time_wait``;
    ``connect_timeout``). Or hand over a connected client with ``nc=``.
    """

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        prefix: str = "cp",
        service: str | None = None,
        request_timeout: float = 5.0,
        retry_deadline: float = 30.0,
        settle_deadline: float = 60.0,
        nc: NatsClient | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        nkeys_seed: str | None = None,
        nkeys_seed_str: str | None = None,
        user_credentials: str | None = None,
        tls: ssl.SSLContext | None = None,
        connect_timeout: float = 2.0,
        reconnect_time_wait: float = 0.5,
        max_reconnect_attempts: int = -1,
        name: str | None = None,
        **nats_options: Any,
    ):
        if service is None and user_credentials is not None:
            service = creds_name(user_credentials)
        self.settings = Settings(
            prefix=prefix,
            service=service,
            request_timeout=request_timeout,
            retry_deadline=retry_deadline,
            settle_deadline=settle_deadline,
        )
        self._servers = [servers] if isinstance(servers, str) else list(servers)
        self._own_connection = nc is None
        self._nc: NatsClient | None = nc
        options: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "reconnect_time_wait": reconnect_time_wait,
            "max_reconnect_attempts": max_reconnect_attempts,
            "name": name or service or "controlplane-client",
        }
        for key, value in (
            ("user", user),
            ("password", password),
            ("token", token),
            ("nkeys_seed", nkeys_seed),
            ("nkeys_seed_str", nkeys_seed_str),
            ("user_credentials", user_credentials),
            ("tls", tls),
        ):
            if value is not None:
                options[key] = value
        if service is not None:
            options["inbox_prefix"] = f"{prefix}.reply.{service}"
        # nats-py logs every failed reconnect attempt with a traceback by default; one
        # line on this library's logger is enough (pass error_cb=... to replace it).
        options["error_cb"] = _log_nats_error
        options["disconnected_cb"] = self._log_disconnected
        options["reconnected_cb"] = _log_reconnected
        options.update(nats_options)
        self._nats_options = options
        self._closing = False
        # Settles and clean-ups that outlive their caller (shielded from a cancellation):
        # kept so they are not garbage-collected, and awaited by close().
        self._background: set[asyncio.Task[None]] = set()
        self.budget = Budgets(self)
        self.breakers = Breakers(self)
        self.dlq = DeadLetters(self)

    # -- connection ----------------------------------------------------------------------

    @classmethod
    async def connect(
        cls, servers: str | Sequence[str] = "nats://127.0.0.1:4222", **kwargs: Any
    ) -> ControlPlane:
        """Creates and connects a client (``await ControlPlane.connect(url, ...)``)."""
        client = cls(servers, **kwargs)
        await client.open()
        return client

    async def open(self) -> None:
        if self._nc is None:
            self._nc = await nats.connect(self._servers, **self._nats_options)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Runs ``coro`` as a task that :meth:`close` waits for."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        # Retrieved here, so a failure whose caller is gone is not reported by asyncio as
        # "never retrieved" (the steps log their own failures).
        if not task.cancelled() and task.exception() is not None:
            log.debug("background step failed: %s", task.exception())

    async def close(self) -> None:
        """Waits for settles still running (at most ``settle_deadline``), then drains the
        connection (pending replies arrive first) when this client opened it."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=self.settings.settle_deadline)
        if self._nc is not None and self._own_connection and not self._nc.is_closed:
            self._closing = True
            try:
                await self._nc.drain()
            except Exception:  # already closing, or NATS is gone: nothing left to drain
                await self._nc.close()

    async def __aenter__(self) -> ControlPlane:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _log_disconnected(self) -> None:
        if not self._closing:
            log.warning("NATS: disconnected; reconnecting")

    @property
    def nc(self) -> NatsClient:
        """The underlying nats-py client (to subscribe to your own subjects, say)."""
        if self._nc is None:
            raise RuntimeError("not connected: use `async with ControlPlane(...)` or open()")
        return self._nc

    def subject(self, area: str, verb: str) -> str:
        """``<prefix>.cmd.<service>.<area>.<verb>``: the subject NATS lets only this service
        publish on, so it is what names the sender."""
        if not self.settings.service:
            raise ValueError(
                "no service name: pass user_credentials= (a creds file from "
                "`controlplane service add NAME`) or service="
            )
        return f"{self.settings.prefix}.cmd.{self.settings.service}.{area}.{verb}"

    # -- breakers --------------------------------------------------------------------------

    def breaker(
        self,
        name: str,
        *,
        failure_on: tuple[type[BaseException], ...] = (Exception,),
        exclude: tuple[type[BaseException], ...] = (),
        is_failure: Callable[[BaseException], bool] | None = None,
        fail_open: bool = False,
    ) -> Breaker:
        """A guard for calls to the dependency ``name``: ``async with cp.breaker("x"):`` or
        ``@cp.breaker("x")`` on an ``async def``. See :class:`Breaker`."""
        return Breaker(
            self,
            name,
            failure_on=failure_on,
            exclude=exclude,
            is_failure=is_failure,
            fail_open=fail_open,
        )

    # -- requests --------------------------------------------------------------------------

    async def request_once(
        self, subject: str, body: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """One request; an error body raises its typed exception."""
        nc = self.nc
        payload = json.dumps(body).encode()
        task = asyncio.current_task()
        cancels = _cancelling(task)
        try:
            msg = await nc.request(
                subject,
                payload,
                timeout=timeout if timeout is not None else self.settings.request_timeout,
            )
        except nats.errors.NoRespondersError:
            raise ControlPlaneUnavailable(
                f"no control plane listens on {subject}",
                subject=subject,
                retry_after=0.2,
                maybe_applied=False,
            ) from None
        except nats.errors.TimeoutError:
            raise ControlPlaneUnavailable(
                f"no answer on {subject} within the timeout", subject=subject, retry_after=0.1
            ) from None
        except (
            nats.errors.ConnectionClosedError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.ConnectionDrainingError,
            nats.errors.OutboundBufferLimitError,
            nats.errors.StaleConnectionError,
        ) as error:
            if nc.is_closed:
                raise
            raise ControlPlaneUnavailable(
                f"NATS connection not usable ({type(error).__name__})",
                subject=subject,
                retry_after=0.5,
            ) from None
        if _cancelling(task) > cancels:
            # nats-py waits with asyncio.wait_for, which before Python 3.12 returns the
            # result when a cancellation and the reply arrive together, and the
            # cancellation is lost. Raise it: the caller meant to stop (a reservation
            # cancelled that way is released by Reservation, as any cancelled reserve).
            raise asyncio.CancelledError
        try:
            answer = json.loads(msg.data)
        except ValueError:
            raise InternalError(
                f"not JSON on {subject}: {msg.data[:200]!r}", code="internal"
            ) from None
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            raise error_from_body(answer)
        if not isinstance(answer, dict):
            raise ControlPlaneUnavailable(
                f"unexpected answer on {subject}: {msg.data[:200]!r}", subject=subject
            )
        return answer

    async def request(
        self,
        subject: str,
        body: dict[str, Any],
        *,
        idempotent: bool = True,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """A request retried on retryable errors until ``deadline`` seconds have passed
        (``retry_deadline`` by default). A request that is not idempotent is retried only
        when the previous try surely changed nothing (no responders, ``busy``)."""
        try:
            return await self.request_once(subject, body)
        except RetryableError as error:
            if (not idempotent and error.maybe_applied) or deadline == 0:
                raise
            first = error
        return await retrying(
            lambda: self.request_once(subject, body),
            first,
            deadline=self.settings.retry_deadline if deadline is None else deadline,
            initial=self.settings.backoff_initial,
            maximum=self.settings.backoff_max,
            what=subject,
            only_unapplied=not idempotent,
        )


# asyncio.wait_for (inside nats-py's request) loses a cancellation that races the reply
# before Python 3.12; Task.cancelling(), which shows it, exists from 3.11.
_CHECK_LOST_CANCEL = (3, 11) <= sys.version_info < (3, 12)


def _cancelling(task: asyncio.Task[Any] | None) -> int:
    """How many cancellations of ``task`` are pending (0 where not checked)."""
    if not _CHECK_LOST_CANCEL or task is None:
        return 0
    return int(task.cancelling())  # type: ignore[attr-defined,unused-ignore]


async def _log_nats_error(error: Exception) -> None:
    log.warning("NATS: %s", error or type(error).__name__)


def creds_name(path: str) -> str:
    """The identity a creds file holds: the ``name`` claim of its user JWT."""
    with open(path) as file:
        jwt = next((line.strip() for line in file if line.strip().startswith("eyJ")), None)
    if jwt is None:
        raise ValueError(f"{path}: no user JWT in this creds file")
    claims = jwt.split(".")[1]
    name = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4))).get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{path}: the user JWT names no identity")
    return name


async def _log_reconnected() -> None:
    log.info("NATS: reconnected")


async def retrying(
    attempt: Callable[[], Awaitable[dict[str, Any]]],
    first: RetryableError,
    *,
    deadline: float,
    initial: float,
    maximum: float,
    what: str,
    only_unapplied: bool = False,
) -> dict[str, Any]:
    """After a first try failed with ``first``: runs ``attempt`` again, with jittered
    backoff, until it succeeds, fails with an error that is not retryable (or, with
    ``only_unapplied``, one after which the request may have been applied), or the next
    wait would end past ``deadline`` seconds from now (the last error is raised then)."""
    give_up_at = time.monotonic() + deadline
    last = first
    delay = initial
    tries = 1
    while True:
        wait = max(delay, min(last.retry_after, maximum))
        wait *= 0.5 + random.random()  # jitter: the retries of many callers spread out
        if time.monotonic() + wait > give_up_at:
            raise last
        if tries == 1 or tries % 10 == 0:
            log.info("%s: %s; retrying in %.2f s (try %d)", what, last, wait, tries)
        await asyncio.sleep(wait)
        delay = min(delay * 2, maximum)
        tries += 1
        try:
            return await attempt()
        except RetryableError as error:
            if only_unapplied and error.maybe_applied:
                raise
            last = error
