"""The control plane killed (-9) and started again under a running client, and the client's
NATS connection cut at the same moment: the workers carry on, and once they are done no
reservation is left open and every committed token is counted once."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse

from controlplane_client import BudgetDenied, ControlPlane

from .conftest import Server


class CuttableProxy:
    """A TCP proxy in front of NATS whose connections can be cut (the client then has to
    reconnect) and which refuses connections while it is down."""

    def __init__(self, upstream_url: str):
        parsed = urllib.parse.urlsplit(upstream_url)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 4222)
        self.down = False
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.url = ""
        self.connections = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"nats://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    def cut(self) -> None:
        for writer in list(self.writers):
            writer.close()

    async def stop(self) -> None:
        self.cut()
        if self.server:
            self.server.close()


async def test_restart_under_a_running_client(own_server: Server, ids: str) -> None:
    server = own_server
    server.set_limit(ids, "p", 10_000_000)
    proxy = CuttableProxy(server.nats_url)
    await proxy.start()
    reconnects = 0

    async def reconnected() -> None:
        nonlocal reconnects
        reconnects += 1

    committed = 0
    blocks = 0
    stop_at = time.monotonic() + 6.0

    async def worker(w: int) -> None:
        nonlocal committed, blocks
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            async with cp.budget.reserve(ids, "p", f"w{w}-{n}", "m", 100) as r:
                await asyncio.sleep(0.02)  # the model call
                r.record(37)
            assert r.result is not None
            committed += 37
            blocks += 1

    cp = ControlPlane(
        proxy.url,
        prefix=server.prefix,
        user_credentials=server.creds("pytest-restart"),
        request_timeout=1.5,
        retry_deadline=30,
        reconnect_time_wait=0.2,
        reconnected_cb=reconnected,
    )
    async with cp:
        workers = [asyncio.create_task(worker(w)) for w in range(16)]
        await asyncio.sleep(1.5)
        before = blocks
        assert before > 0
        # Down together: the control plane killed, the client's connection cut and
        # refused for a moment.
        proxy.down = True
        proxy.cut()
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(1.0)
        proxy.down = False
        await asyncio.to_thread(server.start)
        try:
            await asyncio.gather(*workers)
        except BudgetDenied:  # pragma: no cover - the limit is far away
            raise
        assert blocks > before  # work went on after the restart
        assert reconnects >= 1
        assert proxy.connections >= 2
    await proxy.stop()

    # Every reservation was committed, none is left open, no token counted twice.
    state = await server.settled(ids, "p", used=committed)
    assert (state["used"], state["reserved"], state["open_reservations"]) == (committed, 0, 0)
