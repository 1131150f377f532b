"""Webhook deliveries: one background thread per receiver URL, retried with backoff.

A delivery never blocks the API answer (unless a test asks for "webhook sent before the
write's answer"). Each receiver gets its events in order; a failing receiver is retried
a few times (0.5 s, 1 s, 2 s, ...) and then the delivery is dropped, as Xurrent drops
them after its own retries. Every attempt is logged as one line on stdout.

A thread keeps its connection to a receiver open between deliveries (HTTP keep-alive),
as a webhook sender of a busy account does: a new connection per call cost the receiver
a quarter of its time per webhook in a bulk exalate (1,000 creates, 1,000 webhooks).
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

JWT_LIFETIME = 300  # seconds; the webhook policy's "claim expires in"


@dataclass
class Delivery:
    url: str
    webhook_id: int
    event: str
    object_id: int
    body: bytes
    headers: dict[str, str]
    attempts: int = 0
    status: int | None = None
    outcome: str = "queued"  # queued, delivered, failed, dropped
    sent_at: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "url": self.url,
            "webhook_id": self.webhook_id,
            "event": self.event,
            "object_id": self.object_id,
            "attempts": self.attempts,
            "status": self.status,
            "outcome": self.outcome,
        }


class WebhookSender:
    def __init__(
        self,
        urls: list[str],
        account: str,
        api_url: Callable[[], str],
        private_key: bytes | None = None,
        audience: str = "xurrent-sim",
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 10.0,
        log: Callable[[str], None] = print,
        now: Callable[[], float] = time.time,
    ):
        self.urls = list(urls)
        self.account = account
        self.api_url = api_url
        self.private_key = private_key
        self.audience = audience
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.log = log
        self.now = now
        self.lock = threading.Lock()
        self.history: deque[Delivery] = deque(maxlen=2000)
        self.connections = threading.local()  # per thread: receiver URL → open connection
        self.queues: dict[str, queue.Queue] = {}
        for url in self.urls:
            self.queues[url] = queue.Queue()
            threading.Thread(
                target=self._work, args=(url,), daemon=True, name=f"webhook {url}"
            ).start()

    # ---- building

    def build(self, event: str, object_id: int, person: dict, payload: dict) -> list[Delivery]:
        """One delivery per receiver for an event."""
        deliveries = []
        for index, url in enumerate(self.urls, start=1):
            body = {
                "webhook_id": index,
                "account": self.account,
                "event": event,
                "object_id": object_id,
                "person_id": person["id"],
                "person_name": person["name"],
                "payload": payload,
            }
            if self.private_key:
                body = {"jwt": self._sign(index, body)}
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "xurrent-sim-webhook/1",
                "Link": f'<{self.api_url()}/requests/{object_id}>; rel="canonical"',
            }
            deliveries.append(
                Delivery(url, index, event, object_id, json.dumps(body).encode(), headers)
            )
        return deliveries

    def _sign(self, webhook_id: int, data: dict) -> str:
        import jwt  # only needed with --webhook-key

        issued = int(self.now())
        claims = {
            "iss": f"{self.api_url()}/webhook_policies/1",
            "aud": self.audience,
            "sub": str(webhook_id),
            "jti": str(uuid.uuid4()),
            "iat": issued,
            "nbf": issued,
            "exp": issued + JWT_LIFETIME,
            "data": data,
        }
        return jwt.encode(claims, self.private_key, algorithm="RS256")

    # ---- sending

    def enqueue(self, delivery: Delivery) -> None:
        with self.lock:
            self.history.append(delivery)
        self.queues[delivery.url].put(delivery)

    def drop(self, delivery: Delivery) -> None:
        delivery.outcome = "dropped"
        with self.lock:
            self.history.append(delivery)
        self.log(
            f"webhook {delivery.event} #{delivery.object_id} -> {delivery.url}: dropped (fault)"
        )

    def send_now(self, delivery: Delivery) -> None:
        """Deliver in the caller's thread (used for 'webhook before the write's answer')."""
        with self.lock:
            self.history.append(delivery)
        self._deliver(delivery)

    def _work(self, url: str) -> None:
        while True:
            delivery = self.queues[url].get()
            try:
                self._deliver(delivery)
            finally:
                self.queues[url].task_done()

    def _deliver(self, delivery: Delivery) -> None:
        for attempt in range(1, self.retries + 1):
            delivery.attempts = attempt
            delivery.sent_at.append(time.time())
            status, problem = self._post(delivery)
            delivery.status = status
            if status is not None and 200 <= status < 300:
                delivery.outcome = "delivered"
                self.log(
                    f"webhook {delivery.event} #{delivery.object_id} -> {delivery.url}: "
                    f"{status} (attempt {attempt})"
                )
                return
            self.log(
                f"webhook {delivery.event} #{delivery.object_id} -> {delivery.url}: "
                f"{status or problem} (attempt {attempt}/{self.retries})"
            )
            if attempt < self.retries:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        delivery.outcome = "failed"

    def _post(self, delivery: Delivery) -> tuple[int | None, str]:
        """One attempt: (HTTP status, "") or (None, what went wrong)."""
        kept = self.connections.__dict__.setdefault("open", {})
        if delivery.url in kept:
            try:
                return self._call(kept, delivery)
            except (ConnectionError, http.client.BadStatusLine):
                # The receiver closed the kept connection meanwhile: it read nothing, so
                # the call is made once more, on a new connection.
                pass
            except (OSError, ValueError, http.client.HTTPException) as error:
                return None, type(error).__name__
        try:
            return self._call(kept, delivery)
        except (OSError, ValueError, http.client.HTTPException) as error:
            return None, type(error).__name__

    def _call(self, kept: dict, delivery: Delivery) -> tuple[int, str]:
        parts = urlsplit(delivery.url)
        if delivery.url not in kept:
            kind = (
                http.client.HTTPSConnection
                if parts.scheme == "https"
                else http.client.HTTPConnection
            )
            kept[delivery.url] = kind(parts.netloc, timeout=self.timeout)
        connection = kept[delivery.url]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", path, body=delivery.body, headers=delivery.headers)
            answer = connection.getresponse()
            answer.read()
        except BaseException:
            del kept[delivery.url]
            connection.close()
            raise
        if answer.will_close:
            del kept[delivery.url]
            connection.close()
        return answer.status, ""

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every queue is empty and no delivery is in flight."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(q.unfinished_tasks == 0 for q in self.queues.values()):
                return True
            time.sleep(0.02)
        return False

    def summary(self) -> dict:
        with self.lock:
            deliveries = list(self.history)
        counts: dict[str, int] = {}
        for delivery in deliveries:
            counts[delivery.outcome] = counts.get(delivery.outcome, 0) + 1
        return {"counts": counts, "deliveries": [d.summary() for d in deliveries]}

    def clear(self) -> None:
        with self.lock:
            self.history.clear()
