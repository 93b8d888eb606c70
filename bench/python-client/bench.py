"""Reserve + commit through the Python client vs bare nats-py doing the same two requests.

    python bench.py <nats_url> <prefix> <tenant> <tasks> <seconds> <rounds>

Both sides run `tasks` concurrent asyncio tasks in this one process, each on its own
budget (<tenant>/p<i>), each doing reserve -> commit in a loop with a fresh task id per
round trip. Runs alternate bare, client, bare, client, ..., bare; each client run is
compared with the mean of the bare runs on either side of it (the machine is shared and
its speed drifts). Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import nats
from controlplane_client import ControlPlane
from nats.aio.client import Client as NatsClient

Op = Callable[[int, str], Awaitable[None]]


async def run(op: Op, tasks: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds
    run_id = uuid.uuid4().hex[:8]

    async def worker(i: int) -> None:
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            started = time.perf_counter()
            await op(i, f"{run_id}-{i}-{n}")
            latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    cpu_started = time.process_time()
    await asyncio.gather(*(worker(i) for i in range(tasks)))
    elapsed = time.monotonic() - started
    cpu = time.process_time() - cpu_started
    latencies.sort()
    return {
        "pairs_per_second": len(latencies) / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "pairs": len(latencies),
        # This process's CPU time per pair: the client's own cost, steadier than the rate
        # on a shared machine.
        "cpu_us_per_pair": cpu / max(len(latencies), 1) * 1e6,
    }


def bare(nc: NatsClient, prefix: str, service: str, tenant: str) -> Op:
    request_subject = f"{prefix}.cmd.{service}.budget.request"
    commit_subject = f"{prefix}.cmd.{service}.budget.commit"

    async def op(i: int, task_id: str) -> None:
        body = {
            "tenant_id": tenant,
            "project_id": f"p{i}",
            "task_id": task_id,
            "model": "bench",
            "estimated_tokens": 100,
        }
        msg = await nc.request(request_subject, json.dumps(body).encode(), timeout=10)
        answer = json.loads(msg.data)
        if not answer.get("approved"):
            raise RuntimeError(f"not approved: {answer}")
        commit = {"reservation_id": answer["reservation_id"], "actual_tokens": 90}
        msg = await nc.request(commit_subject, json.dumps(commit).encode(), timeout=10)
        if "error" in json.loads(msg.data):
            raise RuntimeError(msg.data.decode())

    return op


def client(cp: ControlPlane, tenant: str) -> Op:
    async def op(i: int, task_id: str) -> None:
        async with cp.budget.reserve(tenant, f"p{i}", task_id, "bench", 100) as r:
            r.record(90)

    return op


async def main() -> None:
    url, prefix, tenant = sys.argv[1], sys.argv[2], sys.argv[3]
    tasks, seconds, rounds = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    # Both as the bench service (BENCH_NATS_CREDS, made by bench/lib.sh): the same identity,
    # subjects and inbox prefix.
    creds = os.environ["BENCH_NATS_CREDS"]
    cp = await ControlPlane.connect(url, prefix=prefix, user_credentials=creds, request_timeout=10)
    service = cp.settings.service or ""
    nc = await nats.connect(
        url, user_credentials=creds, inbox_prefix=f"{prefix}.reply.{service}"
    )
    bare_op, client_op = bare(nc, prefix, service, tenant), client(cp, tenant)
    await run(bare_op, tasks, 1.0)  # warm-up: budgets cached, connections open
    await run(client_op, tasks, 1.0)
    bares = [await run(bare_op, tasks, seconds)]
    clients = []
    for _ in range(rounds):
        clients.append(await run(client_op, tasks, seconds))
        bares.append(await run(bare_op, tasks, seconds))
        print(
            f"bare {bares[-2]['pairs_per_second']:.0f}/s  client "
            f"{clients[-1]['pairs_per_second']:.0f}/s  bare {bares[-1]['pairs_per_second']:.0f}/s",
            file=sys.stderr,
        )
    ratios = [
        c["pairs_per_second"]
        / ((bares[k]["pairs_per_second"] + bares[k + 1]["pairs_per_second"]) / 2)
        for k, c in enumerate(clients)
    ]
    await cp.close()
    await nc.close()
    print(
        json.dumps(
            {
                "tasks": tasks,
                "seconds_per_run": seconds,
                "rounds": rounds,
                "bare": bares,
                "client": clients,
                "ratios": ratios,
                "ratio_median": statistics.median(ratios),
                "bare_pairs_per_second_median": statistics.median(
                    b["pairs_per_second"] for b in bares
                ),
                "client_pairs_per_second_median": statistics.median(
                    c["pairs_per_second"] for c in clients
                ),
                "bare_median_ms": statistics.median(b["median_ms"] for b in bares),
                "client_median_ms": statistics.median(c["median_ms"] for c in clients),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
