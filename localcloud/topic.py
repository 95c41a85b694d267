"""An MNS-like topic with one HTTP subscription: publish, then push asynchronously.

Each published message is delivered in its own thread by ``mns_push.Pusher``
(signed pushes, redelivery per the subscription's strategy, time-scaled), so a
slow or failing endpoint never blocks the publisher, as with MNS. A message
whose every attempt failed goes to ``dead_letter`` when one is set (the
subscription's dead-letter queue), else it is discarded, as MNS does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from localcloud.mns_push import Delivery, Message, Pusher


@dataclass
class TopicStats:
    published: int = 0
    delivered: int = 0
    undelivered: int = 0
    redeliveries: int = 0
    duplicates: int = 0
    dropped: int = 0
    answers_lost: int = 0
    dead_lettered: int = 0
    deliveries: list[Delivery] = field(default_factory=list)


class Topic:
    """``publish(body, key)`` returns the message; ``on_delivery(key, delivery)`` hears the end.

    ``key`` names the message for the fault hook and the caller (the engine
    passes ``<execution>:<event id>``), independent of random message ids.
    """

    def __init__(self, name: str, pusher: Pusher, *,
                 fault: Callable[[str, int], str | None] | None = None,
                 on_delivery: Callable[[str, Delivery], None] | None = None,
                 dead_letter: Callable[[Message], None] | None = None) -> None:
        self.name = name
        self._dead_letter = dead_letter
        self.pusher = pusher
        self._fault = fault
        self._on_delivery = on_delivery
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self.stats = TopicStats()

    def publish(self, body: str, key: str) -> Message:
        message = Message(body)
        thread = threading.Thread(target=self._deliver, args=(message, key), daemon=True,
                                  name=f"push-{key}")
        with self._lock:
            self.stats.published += 1
            self._threads.add(thread)
        thread.start()
        return message

    def _deliver(self, message: Message, key: str) -> None:
        plan = self._fault
        fault = (lambda _message, attempt: plan(key, attempt)) if plan else None
        try:
            try:
                result = self.pusher.deliver(message, fault=fault)
            except Exception as err:  # noqa: BLE001 - a pusher bug: count the message as undelivered
                result = Delivery(message.message_id, statuses=[f"error: {type(err).__name__}: {err}"])
            with self._lock:
                stats = self.stats
                stats.deliveries.append(result)
                stats.delivered += result.delivered
                stats.undelivered += not result.delivered
                stats.redeliveries += result.redeliveries
                stats.duplicates += result.duplicates
                stats.dropped += result.statuses.count("dropped")
                stats.answers_lost += result.statuses.count("lost_answer")
            # A delivery cut short by close() is not a dead letter: MNS would still retry it.
            if not result.delivered and self._dead_letter is not None and not self.pusher.stopped:
                self._dead_letter(message)
                with self._lock:
                    self.stats.dead_lettered += 1
            if self._on_delivery:
                self._on_delivery(key, result)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def snapshot(self) -> TopicStats:
        """A copy of the counters, taken under the lock the delivery threads update them with."""
        with self._lock:
            return replace(self.stats, deliveries=list(self.stats.deliveries))

    def in_flight(self) -> int:
        """Deliveries not ended yet (redeliveries pending included)."""
        with self._lock:
            return len(self._threads)

    def drain(self, timeout: float = 10.0) -> None:
        """Waits for the deliveries in flight (redeliveries included) to end."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 10.0) -> None:
        """Stops pending redeliveries and waits for deliveries in flight."""
        self.pusher.stop()
        self.drain(timeout)
