"""A small durable journal kept outside Redis, in `<data_dir>/state/journal.sqlite3`.

Redis holds the service's state; when Redis comes back without it (no AOF, a new server, a lost
last second), this journal still knows which sources had their first poll, every article seen
(and whether it was to be announced), and every delivery's last state with its post. The pipeline
asks it at each decision Redis can no longer answer, and `distributor.recovery` restores Redis
from it.

SQLite in WAL mode: several threads and processes of one machine share the file; each thread has
its own connection. One small statement per event. A journal that cannot be opened or written is
reported (an error log line, at most every few minutes) and the pipeline goes on without it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
REPORT_EVERY = 300.0  # seconds between two error lines about an unusable journal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (name TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, published REAL, announce INTEGER NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    article_id TEXT NOT NULL, channel TEXT NOT NULL, state TEXT NOT NULL,
    post_id TEXT NOT NULL DEFAULT '', post_url TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (article_id, channel)
);
"""


@dataclass(frozen=True)
class JournaledDelivery:
    article_id: str
    channel: str
    state: str
    post_id: str
    post_url: str
    error: str
    created: float
    updated: float


@dataclass(frozen=True)
class Identity:
    """Which Redis state this journal belongs to: the installation, and the state's epoch (a new
    one after each recovery, so other machines' journals notice and merge theirs)."""

    instance: str
    epoch: str


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._last_report = -REPORT_EVERY
        self.broken = False  # the last use failed (reported): the journal cannot be relied on now

    # --- connections -----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; cheap commits
            conn.executescript(_SCHEMA)
        except sqlite3.Error:
            conn.close()
            raise
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _run(self, what: str, default: T, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work`; a journal that fails is reported, never fatal to the pipeline."""
        try:
            result = work(self._connection())
        except (sqlite3.Error, OSError) as exc:
            self.broken = True
            now = time.monotonic()
            if now - self._last_report >= REPORT_EVERY:
                self._last_report = now
                log.error(
                    "journal %s unusable (%s: %s): %s not recorded; a Redis restart without AOF could now "
                    "re-post or miss articles",
                    self.path,
                    type(exc).__name__,
                    exc,
                    what,
                )
            return default
        self.broken = False
        return result

    def close(self) -> None:
        """Close this thread's connection (the next call opens the file again)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- identity --------------------------------------------------------------------------------

    def identity(self) -> Identity | None:
        def read(conn: sqlite3.Connection) -> Identity | None:
            rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('instance', 'epoch')").fetchall())
            return Identity(rows["instance"], rows.get("epoch", "")) if "instance" in rows else None

        return self._run("the identity", None, read)

    def set_identity(self, identity: Identity) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [("instance", identity.instance), ("epoch", identity.epoch)],
            )

        self._run("the identity", None, write)

    # --- sources ---------------------------------------------------------------------------------

    def source_polled(self, names: Iterable[str]) -> None:
        rows = [(name, time.time()) for name in names]
        self._run("a first poll", None, lambda c: c.executemany("INSERT OR IGNORE INTO sources VALUES (?, ?)", rows))

    def first_poll_done(self, name: str) -> bool:
        return self._run(
            "a lookup",
            False,
            lambda c: c.execute("SELECT 1 FROM sources WHERE name = ?", (name,)).fetchone() is not None,
        )

    def sources(self) -> list[str]:
        return self._run("a lookup", [], lambda c: [r[0] for r in c.execute("SELECT name FROM sources")])

    # --- articles --------------------------------------------------------------------------------

    def sighted(self, article_id: str, published: float | None, announce: bool) -> bool:
        """Record an article new to Redis; whether it may be announced: not when the journal knew
        it already as one not to announce (a source's existing articles, say)."""

        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO articles VALUES (?, ?, ?, ?)",
                (article_id, published, int(announce), time.time()),
            )
            if cursor.rowcount:
                return announce
            row = conn.execute("SELECT announce FROM articles WHERE id = ?", (article_id,)).fetchone()
            return (announce and bool(row[0])) if row else announce

        return self._run("an article", announce, work)

    def articles_known(self, ids: Iterable[str]) -> None:
        """Articles Redis knows (when rebuilding the journal from Redis): never announced again."""
        now = time.time()
        rows = [(i, None, 0, now) for i in ids]
        self._run(
            "the articles", None, lambda c: c.executemany("INSERT OR IGNORE INTO articles VALUES (?, ?, ?, ?)", rows)
        )

    # --- deliveries ------------------------------------------------------------------------------

    def delivery(self, article_id: str, channel: str, state: str, **fields: str) -> None:
        """The delivery's new state (and post, or error) after the ledger changed it."""
        now = time.time()
        values = (
            article_id,
            channel,
            state,
            fields.get("post_id", ""),
            fields.get("post_url", ""),
            fields.get("error", ""),
            now,
            now,
        )

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                """INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (article_id, channel) DO UPDATE SET state = excluded.state,
                    post_id = CASE WHEN excluded.post_id != '' THEN excluded.post_id ELSE post_id END,
                    post_url = CASE WHEN excluded.post_url != '' THEN excluded.post_url ELSE post_url END,
                    error = excluded.error, updated = excluded.updated""",
                values,
            )

        self._run(f"delivery {article_id} -> {channel} ({state})", None, write)

    def deliveries_created(self, article_id: str, created: list[tuple[str, str]]) -> None:
        """New deliveries of one article, (channel, state) each, in one transaction."""
        now = time.time()
        rows = [(article_id, channel, state, "", "", "", now, now) for channel, state in created]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                """INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (article_id, channel) DO UPDATE SET state = excluded.state,
                    error = excluded.error, updated = excluded.updated""",
                rows,
            )

        self._run(f"the deliveries of {article_id}", None, write)

    def deliveries_known(self, records: Iterable[JournaledDelivery]) -> None:
        """Deliveries Redis knows (when rebuilding the journal from Redis)."""
        rows = [
            (d.article_id, d.channel, d.state, d.post_id, d.post_url, d.error, d.created, d.updated) for d in records
        ]
        self._run(
            "the deliveries",
            None,
            lambda c: c.executemany("INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows),
        )

    def find_delivery(self, article_id: str, channel: str) -> JournaledDelivery | None:
        def read(conn: sqlite3.Connection) -> JournaledDelivery | None:
            row = conn.execute(
                "SELECT * FROM deliveries WHERE article_id = ? AND channel = ?", (article_id, channel)
            ).fetchone()
            return JournaledDelivery(*row) if row else None

        return self._run("a lookup", None, read)

    def find_deliveries(self, article_id: str, channels: list[str]) -> list[JournaledDelivery]:
        """The journaled deliveries of one article among `channels`, in one query."""

        def read(conn: sqlite3.Connection) -> list[JournaledDelivery]:
            marks = ", ".join("?" * len(channels))
            rows = conn.execute(
                f"SELECT * FROM deliveries WHERE article_id = ? AND channel IN ({marks})",  # placeholders only
                (article_id, *channels),
            ).fetchall()
            return [JournaledDelivery(*row) for row in rows]

        return self._run("a lookup", [], read) if channels else []

    def deliveries(self, batch: int = 500) -> Iterator[list[JournaledDelivery]]:
        """Every journaled delivery, in batches (a journal may hold years of them)."""

        def page(after: tuple[str, str]) -> Callable[[sqlite3.Connection], list[JournaledDelivery]]:
            return lambda conn: [
                JournaledDelivery(*row)
                for row in conn.execute(
                    "SELECT * FROM deliveries WHERE (article_id, channel) > (?, ?) "
                    "ORDER BY article_id, channel LIMIT ?",
                    (*after, batch),
                )
            ]

        after = ("", "")
        none: list[JournaledDelivery] = []
        while found := self._run("a lookup", none, page(after)):
            yield found
            after = (found[-1].article_id, found[-1].channel)

    # --- reporting -------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        def read(conn: sqlite3.Connection) -> dict[str, int]:
            return {
                table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # fixed table names
                for table in ("sources", "articles", "deliveries")
            }

        return self._run("a count", {"sources": 0, "articles": 0, "deliveries": 0}, read)

    def newest_published(self) -> float | None:
        """The newest publish time the journal knows: articles after it are news to it."""

        def read(conn: sqlite3.Connection) -> float | None:
            value = conn.execute("SELECT max(published) FROM articles").fetchone()[0]
            return float(value) if value is not None else None

        return self._run("a lookup", None, read)
