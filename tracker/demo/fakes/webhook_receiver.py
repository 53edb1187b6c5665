"""A local HTTP endpoint that records webhook POSTs and checks their Standard Webhooks signature.

The check is written here from the specification, independently of the signer in
``notifiers/webhook.py``, so a test that passes proves the two agree with the spec rather
than with each other: ``webhook-signature`` holds space-separated ``v1,<base64>`` entries,
each an HMAC-SHA256 of ``"{webhook-id}.{webhook-timestamp}.{body}"`` keyed with the
base64-decoded part of a ``whsec_`` secret (or the raw bytes of any other secret).
``respond_with`` queues status codes for fault tests (500, 429, 410…); ``retry_after`` maps
a status to the ``Retry-After`` value sent with it (429 → ``7`` unless changed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tracker.demo.fakes._server import FakeServer, Reply, Request

TOLERANCE_SECONDS = 300


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: base64 after ``whsec_``, else the secret's own bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float,
           tolerance: float = TOLERANCE_SECONDS) -> bool:
    """True when one ``v1`` signature matches and the timestamp is recent enough."""
    message_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature", "")
    if not message_id or not timestamp or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest())
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False


@dataclass(frozen=True)
class ReceivedWebhook:
    """One POST the receiver got."""

    path: str
    headers: Mapping[str, str]
    body: bytes
    verified: bool
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver(FakeServer):
    """Records every POST; answers 204 when the signature checks (or no secret is set), else 401."""

    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self.secret = secret
        self.received: list[ReceivedWebhook] = []
        self.respond_with: deque[int] = deque()
        self.retry_after: dict[int, str] = {429: "7"}
        self._received_lock = threading.Lock()

    def endpoint(self, path: str = "/hook") -> str:
        return f"{self.url}{path}"

    def handle(self, request: Request) -> Reply:
        if request.method != "POST":
            return Reply.text("method not allowed", 405)
        verified = self.secret is None or verify(self.secret, request.headers, request.body,
                                                 time.time())
        with self._received_lock:
            status = self.respond_with.popleft() if self.respond_with else (204 if verified else 401)
            self.received.append(ReceivedWebhook(request.path, request.headers, request.body,
                                                 verified, status))
        if status == 204:
            return Reply(status)
        headers = {"Retry-After": self.retry_after[status]} if status in self.retry_after else {}
        return Reply.text("slow down" if status == 429 else f"status {status}", status, **headers)
