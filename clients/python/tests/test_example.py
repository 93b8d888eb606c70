"""The example worker runs against a real control plane (so it stays a working example)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .conftest import Server

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "worker.py"


async def test_example_worker(server: Server, ids: str) -> None:
    spec = importlib.util.spec_from_file_location("example_worker", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    worker = importlib.util.module_from_spec(spec)
    sys.modules["example_worker"] = worker
    spec.loader.exec_module(worker)
    server.set_limit(ids, "chat", 1_000_000)
    outcomes = await worker.main(
        [
            "--nats",
            server.nats_url,
            "--prefix",
            server.prefix,
            "--creds",
            server.creds("demo-worker"),
            "--tenant",
            ids,
            "--project",
            "chat",
            "--tasks",
            "12",
            "--failure-rate",
            "0.2",
        ]
    )
    assert sum(outcomes.values()) == 12
    assert outcomes.get("done", 0) >= 1
    assert "denied" not in outcomes
    state = await server.settled(ids, "chat")
    assert (state["reserved"], state["open_reservations"]) == (0, 0)
    assert state["used"] > 0
