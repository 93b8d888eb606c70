"""A plain asyncio worker: for each task, reserve tokens, call a (stand-in) model behind
the `openai_api` breaker, record the usage and commit; give up on a task after a few
tries and leave it in the dead-letter queue.

    python examples/worker.py --nats nats://127.0.0.1:4222 --tenant acme --project chat

(The budget needs a limit first: `PUT /budget/limit` as an admin, see docs/api.md.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
from dataclasses import dataclass

from controlplane_client import (
    BreakerOpen,
    BudgetDenied,
    ControlPlane,
    ControlPlaneUnavailable,
)

log = logging.getLogger("worker")


class ModelError(Exception):
    """The model provider failed (a 5xx, a timeout): counts against the breaker."""


@dataclass
class Task:
    id: str
    prompt: str


async def stand_in_model(prompt: str, failure_rate: float) -> tuple[str, int]:
    """Answers like a model would: some text and the tokens it used."""
    await asyncio.sleep(random.uniform(0.005, 0.02))
    if random.random() < failure_rate:
        raise ModelError("502 Bad Gateway from the model provider")
    return f"summary of {prompt!r}", 50 + len(prompt)


async def handle(cp: ControlPlane, args: argparse.Namespace, task: Task) -> str:
    """One task, with its retries. Returns what happened to it."""
    for attempt in range(1, args.max_attempts + 1):
        try:
            # The task id makes the reservation idempotent: a retry of this task (here, or
            # by another worker after a crash) gets its open reservation back.
            async with cp.budget.reserve(
                args.tenant, args.project, task.id, "gpt-4o", estimated_tokens=500
            ) as r:
                async with cp.breaker("openai_api"):
                    answer, used = await stand_in_model(task.prompt, args.failure_rate)
                r.record(used)
            log.info("%s: %s (%d tokens)", task.id, answer, used)
            return "done"
        except BudgetDenied as denied:
            log.warning("%s: no budget (%s, %d left)", task.id, denied.reason, denied.available)
            return "denied"
        except BreakerOpen as open_:
            log.info("%s: %s; waiting %.1f s", task.id, open_, open_.retry_after)
            await asyncio.sleep(min(open_.retry_after, 5.0))
        except ModelError as error:
            # The reservation was released and the failure reported to the breaker.
            log.info("%s: attempt %d failed: %s", task.id, attempt, error)
            await asyncio.sleep(0.05 * attempt)
        except ControlPlaneUnavailable as error:
            log.warning("%s: control plane unavailable: %s", task.id, error)
            await asyncio.sleep(error.retry_after)
    entry = await cp.dlq.capture(
        "demo.tasks",
        {"task_id": task.id, "prompt": task.prompt},
        f"gave up after {args.max_attempts} attempts",
        args.max_attempts,
        id=f"demo-{task.id}",
    )
    log.error("%s: left in the dead-letter queue as %s", task.id, entry.id)
    return "dead-lettered"


async def main(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--prefix", default="cp", help="NATS_SUBJECT_PREFIX of the control plane")
    parser.add_argument(
        "--creds",
        default="demo-worker.creds",
        help="the service's creds file (controlplane service add demo-worker --all-tenants)",
    )
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--project", default="chat")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--failure-rate", type=float, default=0.1)
    parser.add_argument("--max-attempts", type=int, default=3)
    args = parser.parse_args(argv)

    tasks = [Task(f"task-{random.getrandbits(40):010x}", f"doc {i}") for i in range(args.tasks)]
    limit = asyncio.Semaphore(args.concurrency)
    outcomes: dict[str, int] = {}

    async with ControlPlane(args.nats, prefix=args.prefix, user_credentials=args.creds) as cp:

        async def run(task: Task) -> None:
            async with limit:
                outcome = await handle(cp, args, task)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

        await asyncio.gather(*(run(t) for t in tasks))
    print(outcomes)
    return outcomes


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main())
