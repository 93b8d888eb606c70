"""Token budgets: reserve before a model call, commit what it used, release when it failed."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import BudgetDenied, ControlPlaneError, SettleFailed
from .models import BudgetState, CommitResult, ReleaseResult, Totals, parse_time

if TYPE_CHECKING:
    from .client import ControlPlane

log = logging.getLogger("controlplane_client")


class Budgets:
    """``cp.budget``: reservations and the budget's state."""

    def __init__(self, cp: ControlPlane):
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
    ) -> Reservation:
        """A reservation for one task, to use as ``async with``:

        - entering asks for ``estimated_tokens``; :class:`BudgetDenied` when not approved;
        - ``r.record(n)`` inside the block adds ``n`` tokens to what the task used;
        - leaving normally commits what was recorded (the whole allocation when nothing
          was recorded);
        - leaving with an exception releases the reservation, or commits what was
          recorded if anything was (those tokens were spent), and re-raises.

        The task id makes every step idempotent: a retried request (after a timeout, or a
        control plane restart) gets the task's open reservation back instead of a second
        one, and a retried commit answers like the first.
        """
        return Reservation(
            self._cp, tenant_id, project_id, task_id, model, estimated_tokens, ttl_seconds
        )

    async def request(
        self,
        tenant_id: str,
        project_id: str,
        task_id: str,
        model: str,
        estimated_tokens: int,
        *,
        ttl_seconds: int | None = None,
    ) -> dict[str, Any]:
        """The raw ``budget.request`` answer (approved or not); prefer :meth:`reserve`."""
        body: dict[str, Any] = {
            "tenant_id": tenant_id,
            "project_id": project_id,
            "task_id": task_id,
            "model": model,
            "estimated_tokens": estimated_tokens,
        }
        if ttl_seconds is not None:
            body["ttl_seconds"] = ttl_seconds
        return await self._cp.request(self._cp.subject("budget", "request"), body)

    async def commit(
        self, reservation_id: str, actual_tokens: int, *, deadline: float | None = None
    ) -> CommitResult:
        answer = await self._cp.request(
            self._cp.subject("budget", "commit"),
            {"reservation_id": reservation_id, "actual_tokens": actual_tokens},
            deadline=deadline,
        )
        return CommitResult.from_body(answer)

    async def release(self, reservation_id: str, *, deadline: float | None = None) -> ReleaseResult:
        answer = await self._cp.request(
            self._cp.subject("budget", "release"),
            {"reservation_id": reservation_id},
            deadline=deadline,
        )
        return ReleaseResult.from_body(answer)

    async def state(self, tenant_id: str, project_id: str) -> BudgetState:
        """The budget as the read model has it (``NotFound`` when no limit was ever set)."""
        answer = await self._cp.request(
            self._cp.subject("budget", "state"),
            {"tenant_id": tenant_id, "project_id": project_id},
        )
        return BudgetState.from_body(answer)


class Reservation:
    """An approved reservation, open from ``async with`` until the block ends."""

    reservation_id: str
    allocated: int
    existing: bool

    def __init__(
        self,
        cp: ControlPlane,
        tenant_id: str,
        project_id: str,
        task_id: str,
        model: str,
        estimated_tokens: int,
        ttl_seconds: int | None,
    ):
        self._cp = cp
        self.tenant_id = tenant_id
        self.project_id = project_id
        self.task_id = task_id
        self.model = model
        self.estimated_tokens = estimated_tokens
        self.ttl_seconds = ttl_seconds
        self._recorded: int | None = None
        self._expires_raw: Any = None
        self._expires_at: datetime | None = None  # parsed when first asked for
        self._entered = False
        self.result: CommitResult | ReleaseResult | None = None
        """The commit or release answer, once the reservation is settled."""

    # -- the block -------------------------------------------------------------------------

    async def __aenter__(self) -> Reservation:
        if self._entered:
            raise RuntimeError("a Reservation is entered once; call reserve() again")
        self._entered = True
        try:
            answer = await self._request()
        except asyncio.CancelledError:
            # The request may have been applied with its answer not read: release the
            # task's reservation in the background instead of holding it until its TTL.
            self._cp.spawn(self._release_after_cancel())
            raise
        if not answer.get("approved"):
            totals = Totals.from_body(answer)
            raise BudgetDenied(
                tenant_id=self.tenant_id,
                project_id=self.project_id,
                task_id=self.task_id,
                reason=str(answer.get("reason", "denied")),
                requested=int(answer.get("requested", self.estimated_tokens)),
                available=totals.available,
                total=totals.total,
                used=totals.used,
                reserved=totals.reserved,
            )
        self.reservation_id = str(answer["reservation_id"])
        self.allocated = int(answer["allocated"])
        self._expires_raw = answer.get("expires_at")
        self.existing = bool(answer.get("existing", False))
        self._answer = answer
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.result is not None:
            return  # settled inside the block
        if exc is None:
            await self._settle_shielded(commit=True)
            return
        commit = self._recorded is not None
        try:
            await self._settle_shielded(commit=commit)
        except (ControlPlaneError, asyncio.CancelledError) as error:
            # The block's own exception is the one the caller needs; the reservation stays
            # open until its TTL releases it.
            log.error(
                "reservation %s of task %s not settled after %s: %s",
                self.reservation_id,
                self.task_id,
                type(exc).__name__,
                error,
            )
            if hasattr(exc, "add_note"):
                exc.add_note(f"controlplane_client: {error}")

    async def _request(self) -> dict[str, Any]:
        return await self._cp.budget.request(
            self.tenant_id,
            self.project_id,
            self.task_id,
            self.model,
            self.estimated_tokens,
            ttl_seconds=self.ttl_seconds,
        )

    async def _release_after_cancel(self) -> None:
        """Asks again with the same task id — the task's open reservation comes back if the
        cancelled request was applied — and releases what it gets."""
        try:
            answer = await self._request()
            if answer.get("approved"):
                await self._cp.budget.release(
                    str(answer["reservation_id"]), deadline=self._cp.settings.settle_deadline
                )
        except ControlPlaneError as error:
            log.warning("task %s: reservation after a cancel not released: %s", self.task_id, error)

    async def _settle_shielded(self, *, commit: bool) -> None:
        """Commits or releases, retrying within ``settle_deadline``. A cancellation of the
        caller meanwhile does not stop it: the same commit or release is sent again in the
        background (both are idempotent), and the cancellation goes on."""
        try:
            await self._settle(commit=commit)
        except asyncio.CancelledError:
            if self.result is None:
                self._cp.spawn(self._settle_in_background(commit=commit))
            raise

    async def _settle_in_background(self, *, commit: bool) -> None:
        try:
            await self._settle(commit=commit)
        except SettleFailed as error:
            log.error("%s; its TTL will release it", error)

    async def _settle(self, *, commit: bool) -> None:
        deadline = self._cp.settings.settle_deadline
        try:
            if commit:
                actual = self._recorded if self._recorded is not None else self.allocated
                self.result = await self._cp.budget.commit(
                    self.reservation_id, actual, deadline=deadline
                )
            else:
                self.result = await self._cp.budget.release(self.reservation_id, deadline=deadline)
        except ControlPlaneError as error:
            raise SettleFailed(
                self.reservation_id, "commit" if commit else "release", error
            ) from error

    # -- inside the block ------------------------------------------------------------------

    def record(self, actual_tokens: int) -> None:
        """Adds tokens the task used (call once per model call); committed at the end."""
        if actual_tokens < 0:
            raise ValueError("actual_tokens must be >= 0")
        self._recorded = (self._recorded or 0) + int(actual_tokens)

    @property
    def recorded(self) -> int | None:
        """The tokens recorded so far (``None``: nothing recorded)."""
        return self._recorded

    async def commit(self, actual_tokens: int | None = None) -> CommitResult:
        """Commits now (``actual_tokens``, else what was recorded, else the allocation);
        the end of the block then does nothing."""
        if actual_tokens is not None:
            self._recorded = int(actual_tokens)
        await self._settle_shielded(commit=True)
        assert isinstance(self.result, CommitResult)
        return self.result

    async def release(self) -> ReleaseResult:
        """Releases now; the end of the block then does nothing."""
        await self._settle_shielded(commit=False)
        assert isinstance(self.result, ReleaseResult)
        return self.result

    # -- time to live ------------------------------------------------------------------------

    @property
    def totals(self) -> Totals:
        """The budget's numbers right after the reservation."""
        return Totals.from_body(self._answer)

    @property
    def expires_at(self) -> datetime:
        """When the server's expiry worker releases the reservation if it is still open."""
        if self._expires_at is None:
            self._expires_at = parse_time(self._expires_raw) or datetime.now(timezone.utc)
        return self._expires_at

    @property
    def seconds_left(self) -> float:
        """Seconds until the server's expiry worker releases the reservation (negative
        once past; wall clocks of client and server are assumed in step). A commit after
        that is still recorded, as ``late``, but the tokens were no longer held."""
        return (self.expires_at - datetime.now(timezone.utc)).total_seconds()

    @property
    def expired(self) -> bool:
        return self.seconds_left <= 0

    def expiring(self, within: float) -> bool:
        """True when fewer than ``within`` seconds are left: start no new model call."""
        return self.seconds_left < within

    def __repr__(self) -> str:
        rid = getattr(self, "reservation_id", None)
        allocated = getattr(self, "allocated", None)
        return f"<Reservation {rid} task={self.task_id} allocated={allocated}>"
