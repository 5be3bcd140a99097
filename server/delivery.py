"""Sending webhook deliveries: a thread of the server that POSTs each pending delivery
(``server.webhooks`` wrote them), retries failures with exponential backoff and keeps
the outcome of each as the delivery log.

A delivery is claimed before it is sent (its ``next_at`` moves past the send's
timeout, fenced on the value read), so two server processes on one database never send
the same delivery at once. A receiver answering 2xx has it; anything else (another
status, a timeout, a refused connection) is tried again after ``retry_base`` seconds,
doubled each time (at most an hour), until ``max_attempts`` tries have failed.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from server.db import Database, changed_rows
from server.tables import Delivery, Webhook, utcnow
from server.webhooks import sign

__all__ = ["Deliverer"]

log = logging.getLogger(__name__)
#: Deliveries sent per pass at most (the rest wait for the next pass, a second later).
_BATCH = 50
_MAX_DELAY = 3600.0


class Deliverer:
    """Sends due deliveries every ``interval`` seconds (and at :meth:`wake`)."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float = 1.0,
        retry_base: float = 10.0,
        max_attempts: int = 8,
        timeout: float = 10.0,
    ) -> None:
        self.db = db
        self.interval = interval
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.timeout = timeout
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http: httpx.Client | None = None

    def start(self) -> None:
        self._http = httpx.Client(timeout=self.timeout, follow_redirects=False)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="hpo-webhooks")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)
        if self._http is not None:
            self._http.close()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # never let one bad pass end the deliveries
                log.exception("webhook delivery pass failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    def run_once(self) -> int:
        """Send every delivery that is due; how many were sent (delivered or not)."""
        now = utcnow()
        with self.db.session() as session:
            due = session.execute(
                select(Delivery.id, Delivery.next_at)
                .where(Delivery.status == "pending", Delivery.next_at <= now)
                .order_by(Delivery.next_at)
                .limit(_BATCH)
            ).all()
        sent = 0
        for delivery_id, next_at in due:
            if self._claim(delivery_id, next_at):
                self._send(delivery_id)
                sent += 1
        return sent

    def _claim(self, delivery_id: int, next_at: object) -> bool:
        lease = utcnow() + timedelta(seconds=self.timeout + 30)
        with self.db.session() as session:
            return (
                changed_rows(
                    session,
                    update(Delivery)
                    .where(
                        Delivery.id == delivery_id,
                        Delivery.status == "pending",
                        Delivery.next_at == next_at,
                    )
                    .values(next_at=lease),
                )
                == 1
            )

    def _send(self, delivery_id: int) -> None:
        with self.db.session() as session:
            row = session.execute(
                select(
                    Delivery.event, Delivery.body, Delivery.attempts, Webhook.url, Webhook.secret
                )
                .join(Webhook, Webhook.id == Delivery.webhook_id)
                .where(Delivery.id == delivery_id)
            ).first()
        if row is None:  # its hook was deleted meanwhile
            return
        event, body, attempts, url, secret = row
        data = body.encode()
        headers = {
            "content-type": "application/json",
            "user-agent": "hpo-service-webhooks",
            "x-hpo-event": event,
            "x-hpo-delivery": str(delivery_id),
            "x-hpo-signature-256": sign(secret, data),
        }
        code: int | None = None
        error: str | None = None
        try:
            assert self._http is not None
            answer = self._http.post(url, content=data, headers=headers)
            code = answer.status_code
            if not 200 <= code < 300:
                error = f"the receiver answered {code}"
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"[:500]
        tries = attempts + 1
        values: dict[str, object] = {"attempts": tries, "response_code": code, "error": error}
        now = utcnow()
        if error is None:
            values |= {"status": "delivered", "delivered_at": now}
        elif tries >= self.max_attempts:
            values |= {"status": "failed"}
            log.warning("webhook delivery %s failed for good: %s", delivery_id, error)
        else:
            delay = min(_MAX_DELAY, self.retry_base * 2 ** (tries - 1))
            values |= {"next_at": now + timedelta(seconds=delay)}
        with self.db.session() as session:
            session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))
