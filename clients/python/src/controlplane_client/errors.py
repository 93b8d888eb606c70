"""Exceptions: one type per API error code, plus the client's own outcomes.

Every error body of the control plane is ``{"error": {"code", "message", "field"?}}``; the
``code`` picks the class here (``invalid_request`` -> :class:`InvalidRequest`, ...). Errors
that say "try again" (``busy``, ``unavailable``, ``not_yet_applied``, and the transport's
own failures) derive from :class:`RetryableError` and carry ``retry_after`` in seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class ControlPlaneError(Exception):
    """Base of every exception this library raises."""


class ApiError(ControlPlaneError):
    """The control plane answered with an error body."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidRequest(ApiError):
    """400 ``invalid_request``: a field is missing or wrong (``field`` names it)."""

    code = "invalid_request"


class Unauthenticated(ApiError):
    """401 ``unauthenticated``."""

    code = "unauthenticated"


class Forbidden(ApiError):
    """403 ``forbidden``."""

    code = "forbidden"


class NotFound(ApiError):
    """404 ``not_found``: unknown reservation, budget or verb."""

    code = "not_found"


class Conflict(ApiError):
    """409 ``conflict``: the command contradicts history (e.g. commit after release)."""

    code = "conflict"


class PayloadTooLarge(ApiError):
    """413 ``payload_too_large``."""

    code = "payload_too_large"


class InternalError(ApiError):
    """500 ``internal``: the message quotes the id the server logged it under."""

    code = "internal"


class RetryableError(ControlPlaneError):
    """Try again after ``retry_after`` seconds. The library retries these itself within its
    deadline. ``maybe_applied`` is False when the request surely changed nothing (the
    server said so, or no control plane received it)."""

    retry_after: float = 1.0
    maybe_applied: bool = False


class Busy(ApiError, RetryableError):
    """503 ``busy``: too many concurrent writers on one aggregate."""

    code = "busy"
    retry_after = 1.0


class Unavailable(ApiError, RetryableError):
    """503 ``unavailable``: the event store could not be reached; nothing was applied."""

    code = "unavailable"
    retry_after = 2.0


class NotYetApplied(ApiError, RetryableError):
    """503 ``not_yet_applied``: a read with ``min_position`` waited too long."""

    code = "not_yet_applied"
    retry_after = 1.0


class RateLimited(ApiError, RetryableError):
    """429 ``rate_limited`` (HTTP only today)."""

    code = "rate_limited"
    retry_after = 1.0


class ControlPlaneUnavailable(RetryableError):
    """No control plane answered: no responders on the subject, a timeout, or the NATS
    connection is down. A request that timed out may have been applied; the library only
    retries requests that are idempotent (all of them except breaker outcome reports)."""

    def __init__(
        self,
        message: str,
        *,
        subject: str,
        retry_after: float = 0.5,
        maybe_applied: bool = True,
    ):
        super().__init__(message)
        self.subject = subject
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


class BudgetDenied(ControlPlaneError):
    """The reservation was not approved (the server answered ``approved: false``).

    ``reason`` is ``insufficient_budget`` or ``no_budget``; ``available`` is what the
    budget had left for new reservations when it decided."""

    def __init__(
        self,
        *,
        tenant_id: str,
        project_id: str,
        task_id: str,
        reason: str,
        requested: int,
        available: int,
        total: int,
        used: int,
        reserved: int,
    ):
        super().__init__(
            f"budget {tenant_id}/{project_id} denied {requested} tokens for task {task_id}: "
            f"{reason} (available {available})"
        )
        self.tenant_id = tenant_id
        self.project_id = project_id
        self.task_id = task_id
        self.reason = reason
        self.requested = requested
        self.available = available
        self.total = total
        self.used = used
        self.reserved = reserved


class BreakerOpen(ControlPlaneError):
    """The breaker refused the call. ``next_retry`` is when it goes half-open (``None``
    when an operator forced it open, or when it is half-open with every trial permit
    handed out); ``retry_after`` is the seconds until then, or a short guess."""

    def __init__(
        self,
        name: str,
        *,
        state: str,
        next_retry: datetime | None,
        retry_after: float,
    ):
        when = f" until {next_retry.isoformat()}" if next_retry else ""
        super().__init__(f"breaker {name} is {state}{when}")
        self.name = name
        self.state = state
        self.next_retry = next_retry
        self.retry_after = retry_after


class SettleFailed(ControlPlaneError):
    """A reservation could not be committed or released within the retry deadline. It
    stays open on the server until its TTL releases it."""

    def __init__(self, reservation_id: str, action: str, cause: BaseException):
        super().__init__(f"could not {action} reservation {reservation_id}: {cause}")
        self.reservation_id = reservation_id
        self.action = action
        self.cause = cause


_BY_CODE: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        InternalError,
        Busy,
        Unavailable,
        NotYetApplied,
        RateLimited,
    )
}


def error_from_body(body: Any) -> ApiError:
    """The exception for an ``{"error": {...}}`` body (an unknown code gives ApiError)."""
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict):
        return ApiError(f"malformed error body: {body!r}", code="internal")
    code = str(detail.get("code", "error"))
    message = str(detail.get("message", ""))
    field = detail.get("field")
    cls = _BY_CODE.get(code, ApiError)
    return cls(message, code=code, field=str(field) if field is not None else None)
