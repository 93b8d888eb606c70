"""Typed answers of the control plane (the JSON shapes of docs/api.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as the server writes it (``Z``, up to nanoseconds) -> aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00").replace("z", "+00:00")
    # Python 3.10's fromisoformat takes at most 6 fraction digits.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key, 0)
    return int(value) if value is not None else 0


@dataclass(frozen=True)
class Totals:
    """A budget's numbers after a command."""

    total: int
    used: int
    reserved: int
    available: int
    open_reservations: int

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Totals:
        return cls(
            total=_int(body, "total"),
            used=_int(body, "used"),
            reserved=_int(body, "reserved"),
            available=_int(body, "available"),
            open_reservations=_int(body, "open_reservations"),
        )


@dataclass(frozen=True)
class BudgetState:
    tenant_id: str
    project_id: str
    totals: Totals

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> BudgetState:
        return cls(str(body["tenant_id"]), str(body["project_id"]), Totals.from_body(body))


@dataclass(frozen=True)
class CommitResult:
    reservation_id: str
    allocated: int
    actual_tokens: int
    overage: int
    late: bool
    position: int | None
    totals: Totals

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> CommitResult:
        return cls(
            reservation_id=str(body["reservation_id"]),
            allocated=_int(body, "allocated"),
            actual_tokens=_int(body, "actual_tokens"),
            overage=_int(body, "overage"),
            late=bool(body.get("late", False)),
            position=body.get("position"),
            totals=Totals.from_body(body),
        )


@dataclass(frozen=True)
class ReleaseResult:
    reservation_id: str
    released: bool
    allocated: int
    position: int | None
    totals: Totals

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ReleaseResult:
        return cls(
            reservation_id=str(body["reservation_id"]),
            released=bool(body.get("released", True)),
            allocated=_int(body, "allocated"),
            position=body.get("position"),
            totals=Totals.from_body(body),
        )


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int
    open_seconds: int
    half_open_max_calls: int


@dataclass(frozen=True)
class BreakerStatus:
    """A breaker as ``<prefix>.cmd.<service>.breaker.status`` / ``.record`` answer it."""

    name: str
    state: str
    failures: int
    next_retry: datetime | None
    config: BreakerConfig | None
    trials_granted: int
    successes: int
    last_error: str | None
    counted: bool | None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> BreakerStatus:
        config = body.get("config")
        return cls(
            name=str(body.get("name", "")),
            state=str(body.get("state", "CLOSED")),
            failures=_int(body, "failures"),
            next_retry=parse_time(body.get("next_retry")),
            config=BreakerConfig(
                failure_threshold=_int(config, "failure_threshold"),
                open_seconds=_int(config, "open_seconds"),
                half_open_max_calls=_int(config, "half_open_max_calls"),
            )
            if isinstance(config, dict)
            else None,
            trials_granted=_int(body, "trials_granted"),
            successes=_int(body, "successes"),
            last_error=body.get("last_error"),
            counted=body.get("counted"),
        )


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    state: str
    trial: bool


@dataclass(frozen=True)
class DlqEntry:
    """A dead-letter entry as ``<prefix>.cmd.<service>.dlq.capture`` answers it."""

    id: str
    original_subject: str
    payload: Any
    encoding: str
    error: str
    attempts: int
    created_at: datetime | None
    resolved: bool
    requeue_count: int
    changed: bool
    position: int | None
    raw: dict[str, Any]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> DlqEntry:
        return cls(
            id=str(body["id"]),
            original_subject=str(body.get("original_subject", "")),
            payload=body.get("payload"),
            encoding=str(body.get("encoding", "json")),
            error=str(body.get("error", "")),
            attempts=_int(body, "attempts"),
            created_at=parse_time(body.get("created_at")),
            resolved=bool(body.get("resolved", False)),
            requeue_count=_int(body, "requeue_count"),
            changed=bool(body.get("changed", True)),
            position=body.get("position"),
            raw=body,
        )
