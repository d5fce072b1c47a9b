"""A FakeServer a test can script: queued replies (429, 5xx, odd bodies) are answered before the
fake's own behaviour, and accepted posts are kept in `posts` for assertions.

Stopping a FakeServer takes half a second (its poll interval), so a test module starts one fake
and calls `reset()` before each test; subclasses put their default state in `reset`.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Self

from tests.fakes.server import FakeServer, Handler, Reply, Request


class ScriptedFake(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []
        self._queue: deque[Reply] = deque()
        self._queue_lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget posts, requests and queued replies (subclasses restore their defaults too)."""
        with self._queue_lock:
            self.posts.clear()
            self.requests.clear()
            self._queue.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def serve(self, method: str, pattern: str, handler: Handler) -> None:
        """Route to `handler`, unless a reply queued with `then` is waiting."""

        def scripted_first(request: Request) -> Reply:
            return self.queued() or handler(request)

        self.add(method, pattern, scripted_first)

    def then(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order, whatever they contain."""
        with self._queue_lock:
            self._queue.extend(replies)

    def queued(self) -> Reply | None:
        with self._queue_lock:
            return self._queue.popleft() if self._queue else None

    def accept(self, post: dict[str, Any]) -> None:
        with self._queue_lock:
            self.posts.append(post)
