"""A real `controlplane serve` for the tests: its own database, NATS subject prefix,
stream names and port, on the PostgreSQL and NATS of `make services` (.data/services.env)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient

from controlplane_client import ControlPlane

ROOT = Path(__file__).resolve().parents[3]
ADMIN_PASSWORD = "admin-password-for-python-client-tests"
JWT_SECRET = "python-client-tests-jwt-secret-0123456789abcdef"


NEEDED = ("DATABASE_URL", "NATS_URL", "NATS_AUTH_DIR")


def _services_env() -> dict[str, str]:
    """DATABASE_URL, NATS_URL and NATS_AUTH_DIR (the NATS identities: the account seed that
    signs the tests' services, the control plane's and an administrator's creds) from the
    environment, else from .data/services.env."""
    found = {k: os.environ[k] for k in NEEDED if os.environ.get(k)}
    env_file = ROOT / ".data" / "services.env"
    if len(found) < len(NEEDED) and env_file.exists():
        for line in env_file.read_text().splitlines():
            match = re.match(r"^(?:export\s+)?([A-Z_]+)=(.*)$", line.strip())
            if match and match.group(1) in NEEDED and match.group(1) not in found:
                found[match.group(1)] = shlex.split(match.group(2))[0]
    missing = set(NEEDED) - found.keys()
    if missing:
        pytest.exit(f"{', '.join(sorted(missing))} not set: run `make services` first", 2)
    return found


def _binary() -> Path:
    if os.environ.get("CONTROLPLANE_BIN"):
        return Path(os.environ["CONTROLPLANE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    for profile in ("release", "debug"):
        candidate = target / profile / "controlplane"
        if candidate.exists():
            return candidate
    pytest.exit("no controlplane binary: cargo build --locked -p controlplane", 2)


def _psql(database_url: str, sql: str) -> None:
    subprocess.run(["psql", database_url, "-qc", sql], check=True, capture_output=True)


def _with_database(database_url: str, name: str) -> str:
    base, _, query = database_url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")


class Server:
    """One `controlplane serve` process; `restart()` kills it (-9) and starts another on the
    same database, prefix and streams."""

    def __init__(self, services: dict[str, str]):
        self.services = services
        self.nats_url = services["NATS_URL"]
        self.auth_dir = Path(services["NATS_AUTH_DIR"])
        self.creds_dir = Path(tempfile.mkdtemp(prefix="pyc-creds-"))
        hex_id = uuid.uuid4().hex
        # Names of the shapes `make test` cleans up after a killed run
        # (cp_test_% databases, scripts/drop-test-streams.py).
        self.database = f"cp_test_{hex_id}"
        self.prefix = f"t{hex_id}"
        self.streams = [f"{kind}_{self.prefix}" for kind in ("EV", "ADV", "WORK", "SBX")]
        self.database_url = _with_database(services["DATABASE_URL"], self.database)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._token: str | None = None
        self.log = Path(tempfile.mkstemp(prefix="pyc-serve-", suffix=".log")[1])

    def start(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "APP_ENV": "test",
            "DATABASE_URL": self.database_url,
            "NATS_URL": self.nats_url,
            "NATS_CREDS": str(self.auth_dir / "controlplane.creds"),
            "NATS_SUBJECT_PREFIX": self.prefix,
            "EVENTS_STREAM": self.streams[0],
            "DLQ_ADVISORY_STREAM": self.streams[1],
            "DLQ_WATCH_STREAMS": self.streams[2],
            "SANDBOX_AUDIT_STREAM": self.streams[3],
            "JWT_SECRET": JWT_SECRET,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "HOST": "127.0.0.1",
            "PORT": "0",
            "MIN_POSITION_WAIT_MS": "5000",
            "EXPIRY_INTERVAL_MS": "200",
            "RATE_LIMITS": "admin=1000000",
            "LOGIN_RATE_PER_MINUTE": "100000",
            "RUST_LOG": "warn",
        }
        offset = self.log.stat().st_size  # a restart appends: read only what follows
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [str(_binary()), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            urls = re.findall(r"listening on (http://[0-9.:]+)", text)
            if urls:
                self.url = urls[-1]
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"controlplane serve exited:\n{text}")
            time.sleep(0.05)
        raise RuntimeError(f"controlplane serve did not say where it listens:\n{self.log}")

    def creds(self, service: str, *, prefix: str | None = None) -> str:
        """Registers ``service`` (every tenant) and returns its creds file, made by
        ``controlplane service add`` as an operator makes them."""
        out = self.creds_dir / f"{service}-{prefix or self.prefix}.creds"
        subprocess.run(
            [str(_binary()), "service", "add", service, "--all-tenants", "--out", str(out)],
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "APP_ENV": "test",
                "DATABASE_URL": self.database_url,
                "NATS_SUBJECT_PREFIX": prefix or self.prefix,
                "NATS_ACCOUNT_SEED_FILE": str(self.auth_dir / "account.seed"),
            },
            check=True,
            capture_output=True,
        )
        return str(out)

    async def admin_nats(self) -> NatsClient:
        """A NATS connection as the administrator (JetStream streams, any subject)."""
        return await nats.connect(
            self.nats_url,
            connect_timeout=2,
            user_credentials=str(self.auth_dir / "admin.creds"),
        )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    # -- HTTP (admin) --------------------------------------------------------------------------

    def http(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"content-type": "application/json"}
        if auth:
            headers["authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from None

    def token(self) -> str:
        if self._token is None:
            answer = self.http(
                "POST",
                "/auth/login",
                {"username": "admin", "password": ADMIN_PASSWORD},
                auth=False,
            )
            self._token = str(answer["token"])
        return self._token

    def set_limit(self, tenant: str, project: str, total: int) -> None:
        """Sets a limit and waits until the read model has it (reads then find it)."""
        answer = self.http(
            "PUT",
            "/budget/limit",
            {"tenant_id": tenant, "project_id": project, "total_tokens": total},
        )
        self.state(tenant, project, answer.get("position"))

    def state(self, tenant: str, project: str, min_position: int | None = None) -> Any:
        query = {"tenant_id": tenant, "project_id": project}
        if min_position:
            query["min_position"] = str(min_position)
        return self.http("GET", "/budget/state?" + urllib.parse.urlencode(query))

    async def settled(self, tenant: str, project: str, used: int | None = None) -> Any:
        """The budget over HTTP once the read model shows nothing reserved (and ``used``
        tokens, when given), or as it is after 10 s."""
        state: Any = {}
        for _ in range(100):
            state = await asyncio.to_thread(self.state, tenant, project)
            if state["reserved"] == 0 and (used is None or state["used"] == used):
                break
            await asyncio.sleep(0.1)
        return state

    async def drop(self) -> None:
        self.stop()
        try:
            nc = await self.admin_nats()
            js = nc.jetstream()
            # The events stream's audit anchors (made by the publisher) go too.
            for stream in [*self.streams, f"{self.streams[0]}_ANCHORS"]:
                # A stream never made (no sandbox reports, say): nothing to delete.
                with contextlib.suppress(Exception):
                    await js.delete_stream(stream)
            await nc.close()
        finally:
            admin = self.services["DATABASE_URL"]
            _psql(admin, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.log.unlink(missing_ok=True)
            shutil.rmtree(self.creds_dir, ignore_errors=True)


async def start_server() -> Server:
    server = Server(_services_env())
    _psql(server.services["DATABASE_URL"], f'CREATE DATABASE "{server.database}"')
    try:
        await asyncio.to_thread(server.start)
    except BaseException:
        await server.drop()
        raise
    return server


@pytest.fixture(scope="session")
async def server() -> AsyncIterator[Server]:
    """One control plane for the session (tests use their own tenants and breaker names)."""
    s = await start_server()
    yield s
    await s.drop()


@pytest.fixture
async def own_server() -> AsyncIterator[Server]:
    """A control plane of this test alone (it gets killed and restarted)."""
    s = await start_server()
    yield s
    await s.drop()


@pytest.fixture
async def cp(server: Server) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(
        server.nats_url,
        prefix=server.prefix,
        user_credentials=server.creds("pytest"),
        retry_deadline=20,
    ) as client:
        yield client


@pytest.fixture
def ids() -> str:
    """A fresh id for this test's tenant, tasks and breakers."""
    return uuid.uuid4().hex[:12]
