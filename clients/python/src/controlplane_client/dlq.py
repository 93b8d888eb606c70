"""Dead letters: keep a message a consumer gave up on, for an operator to resolve."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nats.aio.msg import Msg

from .models import DlqEntry

if TYPE_CHECKING:
    from .client import ControlPlane

# The server takes capture bodies up to 1.5 MiB.
MAX_CAPTURE_BYTES = 1536 * 1024


class DeadLetters:
    """``cp.dlq``."""

    def __init__(self, cp: ControlPlane):
        self._cp = cp

    async def capture(
        self,
        original_subject: str,
        payload: Any,
        error: str,
        attempts: int,
        *,
        headers: Mapping[str, str | Sequence[str]] | None = None,
        id: str | None = None,
        encoding: str | None = None,
        stream: str | None = None,
        consumer: str | None = None,
        stream_seq: int | None = None,
    ) -> DlqEntry:
        """Records a dead letter (``<prefix>.cmd.<service>.dlq.capture``).

        ``payload``: ``bytes`` are kept byte-exact (sent as base64); a ``str`` is kept as
        text; anything else as JSON (``encoding`` overrides). The entry id is ``id`` (not
        starting with ``js:``, which the server keeps for its automatic capture), else
        ``cap:<service>:<stream>:<stream_seq>`` when both are given, else a fresh UUID:
        capturing the same id again changes nothing (``entry.changed`` is False), so a
        retried capture is safe — which is why it is retried when no answer came.
        """
        body: dict[str, Any] = {
            "original_subject": original_subject,
            "error": error,
            "attempts": attempts,
        }
        if isinstance(payload, (bytes, bytearray, memoryview)):
            body["payload"] = base64.b64encode(bytes(payload)).decode()
            body["encoding"] = "base64"
        elif isinstance(payload, str) and encoding is None:
            body["payload"] = payload
            body["encoding"] = "text"
        else:
            body["payload"] = payload
        if encoding is not None:
            body["encoding"] = encoding
        if headers:
            body["headers"] = {
                k: (v if isinstance(v, str) else list(v)) for k, v in headers.items()
            }
        for key, value in (
            ("id", id),
            ("stream", stream),
            ("consumer", consumer),
            ("stream_seq", stream_seq),
        ):
            if value is not None:
                body[key] = value
        # Without an id and outside a stream, the server makes a fresh UUID per capture: a
        # retry after a lost reply would make a second entry, so only then send once.
        idempotent = id is not None or (stream is not None and stream_seq is not None)
        answer = await self._cp.request(
            self._cp.subject("dlq", "capture"), body, idempotent=idempotent
        )
        return DlqEntry.from_body(answer)

    async def capture_msg(self, msg: Msg, error: str, *, attempts: int | None = None) -> DlqEntry:
        """Captures a nats-py message as it is: subject, exact bytes and headers, and for a
        JetStream message its stream, consumer and stream sequence (so the capture is
        idempotent per stream sequence) and its delivery count as ``attempts``."""
        stream = consumer = None
        stream_seq = None
        delivered = 1
        try:
            meta = msg.metadata
            stream, consumer = meta.stream, meta.consumer
            stream_seq, delivered = meta.sequence.stream, meta.num_delivered
        except Exception:  # not a JetStream message: no metadata
            pass
        return await self.capture(
            msg.subject,
            msg.data,
            error,
            attempts if attempts is not None else delivered,
            headers=dict(msg.headers) if msg.headers else None,
            stream=stream,
            consumer=consumer,
            stream_seq=stream_seq,
        )
