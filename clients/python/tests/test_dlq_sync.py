"""Dead-letter capture and the synchronous facade."""

from __future__ import annotations

import asyncio
import base64

import pytest

from controlplane_client import (
    BreakerOpen,
    BudgetDenied,
    CommitResult,
    ControlPlane,
    SyncControlPlane,
)

from .conftest import Server


async def test_dlq_capture_is_idempotent_per_id(cp: ControlPlane, ids: str) -> None:
    raw = b"\x00\xffnot utf-8"
    entry = await cp.dlq.capture(
        "task.execute",
        raw,
        "schema mismatch",
        4,
        headers={"Trace-Id": "abc", "X-Many": ["1", "2"]},
        id=f"py-{ids}",
    )
    assert entry.id == f"py-{ids}"
    assert entry.changed
    assert (entry.encoding, entry.attempts, entry.resolved) == ("base64", 4, False)
    assert base64.b64decode(entry.payload) == raw
    again = await cp.dlq.capture("task.execute", raw, "schema mismatch", 4, id=f"py-{ids}")
    assert not again.changed

    json_entry = await cp.dlq.capture("task.execute", {"task": "t1"}, "boom", 1)
    assert json_entry.encoding == "json"
    assert json_entry.payload == {"task": "t1"}


async def test_capture_msg_from_jetstream(server: Server, cp: ControlPlane) -> None:
    """A JetStream message captured as it is: exact bytes, headers, and its stream
    sequence, which makes the capture idempotent. The work stream is read with an identity
    that may use JetStream (the service's own identity may only send commands)."""
    work = await server.admin_nats()
    js = work.jetstream()
    stream = server.streams[2]  # WORK_<prefix>: deleted with the test server
    subject = f"{server.prefix}.work.jobs"
    await js.add_stream(name=stream, subjects=[subject])
    await js.publish(subject, b'{"job": 7}', headers={"Trace-Id": "t-7"})
    sub = await js.pull_subscribe(subject, durable="pyc-worker", stream=stream)
    (msg,) = await sub.fetch(1, timeout=5)
    entry = await cp.dlq.capture_msg(msg, "handler raised KeyError")
    # The caller's own id for that stream sequence; js:<stream>:<seq> is the automatic
    # capture's, which no caller may take in advance.
    assert entry.id.startswith("cap:"), entry.id
    assert entry.id.endswith(f":{stream}:1"), entry.id
    assert entry.original_subject == subject
    assert (entry.attempts, entry.error) == (1, "handler raised KeyError")
    # Valid JSON is kept as its exact text and shown as the JSON value (docs/dlq.md).
    assert (entry.encoding, entry.payload) == ("json", {"job": 7})
    assert entry.raw["stream"] == stream
    again = await cp.dlq.capture_msg(msg, "handler raised KeyError")
    assert not again.changed
    await msg.ack()
    await work.close()


def _sync_scenario(server: Server, ids: str) -> None:
    server.set_limit(ids, "p", 1_000)
    creds = server.creds("pytest-sync")
    with SyncControlPlane(server.nats_url, prefix=server.prefix, user_credentials=creds) as cp:
        with cp.budget.reserve(ids, "p", "task-1", "m", 200) as r:
            r.record(150)
        assert isinstance(r.result, CommitResult)
        assert r.result.totals.used == 150

        with pytest.raises(RuntimeError), cp.budget.reserve(ids, "p", "task-2", "m", 200):
            raise RuntimeError("model failed")
        with pytest.raises(BudgetDenied):
            cp.budget.reserve(ids, "p", "task-3", "m", 5_000).__enter__()

        name = f"sync_{ids}"
        server.http("PUT", f"/circuit-breakers/{name}", {"failure_threshold": 2})

        @cp.breaker(name)
        def flaky() -> None:
            raise ConnectionError("refused")

        for _ in range(2):
            with pytest.raises(ConnectionError):
                flaky()
        with pytest.raises(BreakerOpen):
            flaky()
        assert cp.breakers.status(name).state == "OPEN"
        entry = cp.dlq.capture("orders.new", "plain text", "gave up", 3)
        assert entry.encoding == "text"
        state = cp.budget.state(ids, "p")
        assert state.totals.total == 1_000
    state_http = server.state(ids, "p", r.result.position)
    assert state_http["used"] == 150


async def test_sync_facade(server: Server, ids: str) -> None:
    # The facade blocks: run it in a thread, as a script would run it in its own.
    await asyncio.to_thread(_sync_scenario, server, ids)
