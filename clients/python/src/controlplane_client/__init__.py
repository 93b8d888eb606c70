"""Python client for the Golden Arch control plane (budgets, circuit breakers, dead letters)
over NATS. See the README of clients/python for a five-minute start."""

from .breaker import Breaker, Breakers
from .budget import Budgets, Reservation
from .client import ControlPlane, Settings
from .dlq import DeadLetters
from .errors import (
    ApiError,
    BreakerOpen,
    BudgetDenied,
    Busy,
    Conflict,
    ControlPlaneError,
    ControlPlaneUnavailable,
    Forbidden,
    InternalError,
    InvalidRequest,
    NotFound,
    NotYetApplied,
    PayloadTooLarge,
    RateLimited,
    RetryableError,
    SettleFailed,
    Unauthenticated,
    Unavailable,
)
from .models import (
    BreakerConfig,
    BreakerStatus,
    BudgetState,
    CheckResult,
    CommitResult,
    DlqEntry,
    ReleaseResult,
    Totals,
)
from .sync import SyncControlPlane

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "Breaker",
    "BreakerConfig",
    "BreakerOpen",
    "BreakerStatus",
    "Breakers",
    "BudgetDenied",
    "BudgetState",
    "Budgets",
    "Busy",
    "CheckResult",
    "CommitResult",
    "Conflict",
    "ControlPlane",
    "ControlPlaneError",
    "ControlPlaneUnavailable",
    "DeadLetters",
    "DlqEntry",
    "Forbidden",
    "InternalError",
    "InvalidRequest",
    "NotFound",
    "NotYetApplied",
    "PayloadTooLarge",
    "RateLimited",
    "ReleaseResult",
    "Reservation",
    "RetryableError",
    "Settings",
    "SettleFailed",
    "SyncControlPlane",
    "Totals",
    "Unauthenticated",
    "Unavailable",
]
