"""Expected outages (Redis or the broker gone for a while) are logged as one line, not a traceback.

A handler filter rewrites any record that carries a connection error: the traceback is dropped and
the error is appended to the message, so an outage reads "task X failed: Redis unavailable
(ConnectionError: Error 111 connecting to 127.0.0.1:6379)" instead of several screens. Every other
error keeps its traceback.
"""

from __future__ import annotations

import logging

import redis
from kombu.exceptions import OperationalError

OUTAGES: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OperationalError)


def outage_in(exc: BaseException | None) -> BaseException | None:
    """The connection error that `exc` is, or wraps (raise ... from), if any. An error met while
    handling an outage (its __context__) is a bug of its own and keeps its traceback."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OUTAGES):
            return exc
        exc = exc.__cause__
        seen += 1
    return None


class OutageFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            outage = outage_in(record.exc_info[1])
            if outage is not None:
                record.msg = (
                    f"{record.getMessage()}: Redis or the broker is unavailable ({type(outage).__name__}: {outage})"
                )
                record.args = None
                record.exc_info = None
                record.exc_text = None
                record.stack_info = None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of `logger` (the root logger by default), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, OutageFilter) for f in handler.filters):
            handler.addFilter(OutageFilter())
