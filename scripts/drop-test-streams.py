#!/usr/bin/env python3
"""Deletes the JetStream streams that test runs left on a NATS server.

Usage: drop-test-streams.py <nats_url> [<creds file>]

With authentication on (docs/nats-auth.md) it connects with the creds file given (the
administrator's, .data/nats-auth/admin.creds, by default NATS_CREDS when set), signing the
server's nonce with the file's nkey seed (Ed25519, from python3-cryptography).

Each test makes its own streams (EV_t<uuid>, ADV_t<uuid>, WORK_t<uuid>, SBX_t<uuid>,
FUZZ_<id> for schemathesis, E2E_<id>, E2E_DLQ_<id>, E2E_SBX_<id> and E2E_WORK_<id> for the browser tests,
and <events stream>_ANCHORS beside each events stream) and deletes them when it ends; a run that was killed leaves
them behind. Left there they pile up, and their advisory streams overlap the subjects of
a control plane's catch-all advisory stream (`make run`'s dead-letter capture then fails
with "subjects overlap"). Only names of that shape are touched. Plain NATS protocol over
a socket: no client library needed.
"""

import base64
import json
import os
import re
import socket
import sys

TEST_STREAM = re.compile(
    r"^((EV|ADV|WORK|SBX)_t[0-9a-f]{32}|FUZZ_[0-9a-f]{12}|E2E_(DLQ_|SBX_|WORK_)?[0-9a-f]{10})(_ANCHORS)?$"
)
INBOX = "_INBOX.drop_test_streams"


class Nats:
    def __init__(self, url: str, creds: str | None):
        host, port = url.split("//", 1)[-1].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.buffer = b""
        info = json.loads(self.line().split(b" ", 1)[1])
        connect: dict[str, object] = {"verbose": False}
        if creds:
            connect.update(sign_in(creds, info.get("nonce", "")))
        self.sock.sendall(f"CONNECT {json.dumps(connect)}\r\nSUB {INBOX} 1\r\n".encode())

    def receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("NATS closed the connection")
        self.buffer += chunk

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self.receive()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def payload(self, n: int) -> bytes:
        """`n` bytes and the CRLF after them."""
        while len(self.buffer) < n + 2:
            self.receive()
        data, self.buffer = self.buffer[:n], self.buffer[n + 2 :]
        return data

    def request(self, subject: str, body: dict) -> dict:
        payload = json.dumps(body).encode()
        self.sock.sendall(f"PUB {subject} {INBOX} {len(payload)}\r\n".encode() + payload + b"\r\n")
        while True:
            line = self.line()
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG"):
                size = int(line.split()[-1])
                return json.loads(self.payload(size))
            elif line.startswith(b"-ERR"):
                raise ConnectionError(line.decode())


def sign_in(creds_path: str, nonce: str) -> dict[str, object]:
    """The CONNECT fields of a creds file: its user JWT and the nonce signed with its seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = open(creds_path).read()
    jwt = next(line.strip() for line in text.splitlines() if line.strip().startswith("eyJ"))
    seed = next(line.strip() for line in text.splitlines() if line.strip().startswith("SU"))
    raw = base64.b32decode(seed + "=" * (-len(seed) % 8))[2:34]
    signature = Ed25519PrivateKey.from_private_bytes(raw).sign(nonce.encode())
    sig = base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    return {"jwt": jwt, "sig": sig}


def main() -> None:
    creds = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NATS_CREDS")
    nats = Nats(sys.argv[1], creds)
    names, offset = [], 0
    while True:
        page = nats.request("$JS.API.STREAM.NAMES", {"offset": offset})
        if "error" in page:
            print(f"JetStream: {page['error']}", file=sys.stderr)
            return
        streams = page.get("streams") or []
        names += streams
        offset += len(streams)
        if not streams or offset >= page.get("total", 0):
            break
    dropped = 0
    for name in names:
        if TEST_STREAM.match(name):
            answer = nats.request(f"$JS.API.STREAM.DELETE.{name}", {})
            dropped += 1 if answer.get("success") else 0
    print(f"dropped {dropped} test streams of {len(names)} streams")


if __name__ == "__main__":
    main()
