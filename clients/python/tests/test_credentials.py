"""NATS credentials are passed through to nats-py: a private nats-server that requires a
user and password (or a token) lets the client in only with them."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import pytest

from controlplane_client import ControlPlane

from .conftest import Server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nats_server(*auth: str) -> Iterator[str]:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():  # NATS_URL names a server of the user's own
        pytest.skip("no nats-server binary here to start a private server with")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), *auth],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def user_password_nats() -> Iterator[str]:
    yield from _nats_server("--user", "svc", "--pass", "s3cret")


@pytest.fixture
def token_nats() -> Iterator[str]:
    yield from _nats_server("--auth", "tok-123")


async def test_user_and_password(user_password_nats: str) -> None:
    async with ControlPlane(user_password_nats, user="svc", password="s3cret") as cp:
        assert cp.nc.is_connected
    with pytest.raises((nats.errors.Error, OSError)):
        await ControlPlane.connect(
            user_password_nats,
            user="svc",
            password="wrong",
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )


async def test_token(token_nats: str) -> None:
    async with ControlPlane(token_nats, token="tok-123") as cp:
        assert cp.nc.is_connected
    with pytest.raises((nats.errors.Error, OSError)):
        await ControlPlane.connect(
            token_nats, token="nope", allow_reconnect=False, max_reconnect_attempts=0
        )


async def test_the_service_name_comes_from_its_creds(server: Server) -> None:
    """The subject names the service the creds file holds (NATS lets only it publish
    there); without a name the client says what it needs instead of guessing."""
    creds = server.creds("pytest-identity")
    async with ControlPlane(server.nats_url, prefix=server.prefix, user_credentials=creds) as cp:
        assert cp.settings.service == "pytest-identity"
        assert cp.subject("budget", "request") == (
            f"{server.prefix}.cmd.pytest-identity.budget.request"
        )
        entry = await cp.dlq.capture("pytest.identity", {"n": 1}, "gave up", 1)
        assert entry.changed
    with pytest.raises(ValueError, match="service"):
        ControlPlane(server.nats_url, prefix=server.prefix).subject("budget", "request")
