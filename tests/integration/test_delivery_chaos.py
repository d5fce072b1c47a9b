"""Chaos: 200 articles x 6 channels while the platforms misbehave, workers are SIGKILLed every few
seconds and Redis is killed and restarted once (AOF on). In the end every (article, channel) was
posted exactly once, as the fakes counted what they accepted, or flagged `unknown` for the
operator, with no more unknowns than kills, and nothing lost.

The platforms' posting endpoints answer, decided per request by a seeded hash (the same request
meets the same fate on every run): 20% 503 and 10% 429, both with `Retry-After: 1`; 5% take the
post and then cut the connection after 1.5 s without answering (a read timeout, as the client sees
it: the post may exist). Timeouts go only to platforms that can settle them (an idempotency key, a
read-back): on one with neither, a timeout is `unknown` by design whatever happens to the workers
(tests/unit/test_delivery.py covers that), and here the unknowns measure what the kills cost.

Channels: two webhooks and Mastodon (idempotency keys), two outboxes (read-back), and Telegram
(neither: a worker killed mid-post leaves `unknown`). The figures are printed at the end.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from subprocess import Popen

import pytest
import redis as redis_py

from distributor.keys import Keys
from distributor.ledger import FINAL, Ledger
from distributor.store import Store
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.server import FakeServer, Reply, Request
from tests.fakes.telegram import TOKEN, TelegramFake
from tests.fakes.webhook import SIGNING_SECRET, WebhookFake
from tests.integration.helpers import beat, config_file, kill_group, wait_for, worker
from tests.integration.test_redis_outages import RedisServer

ARTICLES = 200
SEED = "issue-14"
KILL_EVERY = 5.0  # seconds between worker kills
KILLS = 6
ARTICLE = re.compile(r"chaos-(\d+)\.html")

pytestmark = pytest.mark.timeout(280)


class Faults:
    """Seeded, per-request failure injection in front of a fake's posting endpoint."""

    def __init__(self, fake: FakeServer, name: str, posting: Callable[[Request], bool], timeouts: bool) -> None:
        self.name = name
        self.timeouts = timeouts
        self.seen: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        for index, (method, pattern, handler) in enumerate(fake.routes):

            def faulty(request: Request, handler: Callable[[Request], Reply] = handler) -> Reply:
                return self.answer(request, handler) if posting(request) else handler(request)

            fake.routes[index] = (method, pattern, faulty)

    def roll(self, request: Request) -> float:
        """The same request (same key or body, same repetition) always rolls the same number."""
        identity = request.header("X-Distributor-Delivery") or request.header("Idempotency-Key") or ""
        identity = identity or hashlib.sha256(request.body).hexdigest()
        with self._lock:
            repetition = self.seen[identity]
            self.seen[identity] += 1
        digest = hashlib.sha256(f"{SEED}|{self.name}|{identity}|{repetition}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def answer(self, request: Request, handler: Callable[[Request], Reply]) -> Reply:
        roll = self.roll(request)
        if roll < 0.20:
            self.count("503")
            body = {"ok": False, "error_code": 503, "description": "Service Unavailable", "error": "unavailable"}
            return Reply(503, body, {"Retry-After": "1"})
        if roll < 0.30:
            self.count("429")
            body = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1}, "error": "Too many requests"}  # fmt: skip
            return Reply(429, body, {"Retry-After": "1"})
        if self.timeouts and roll < 0.35:
            self.count("timeout")
            handler(request)  # the platform acts on it, and the answer never comes
            time.sleep(1.5)
            return Reply(drop=True)
        return handler(request)

    def count(self, what: str) -> None:
        with self._lock:
            self.injected[what] += 1


def posted(items: list[object]) -> Counter[int]:
    """Article number -> how many posts the platform accepted for it."""
    found: Counter[int] = Counter()
    for item in items:
        match = ARTICLE.search(json.dumps(item, default=str, ensure_ascii=False))
        if match:
            found[int(match.group(1))] += 1
    return found


def test_every_delivery_exactly_once_or_unknown_under_chaos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ExitStack() as stack:
        hook_a = stack.enter_context(WebhookFake())
        hook_b = stack.enter_context(WebhookFake())
        mastodon = stack.enter_context(FakeMastodon())
        mastodon.rate_limit = mastodon.remaining = 10**6
        telegram = stack.enter_context(TelegramFake())
        faults = [
            Faults(hook_a, "hook-a", lambda r: r.method == "POST", timeouts=True),
            Faults(hook_b, "hook-b", lambda r: r.method == "POST", timeouts=True),
            Faults(mastodon, "mastodon", lambda r: r.path == "/api/v1/statuses", timeouts=True),
            Faults(telegram, "telegram", lambda r: r.path.endswith("/sendMessage"), timeouts=False),
        ]
        redis_server = RedisServer(tmp_path / "redis")
        redis_server.start()
        stack.callback(redis_server.stop)
        channels = f"""
[worker]
lease = "8s"
sweep_interval = "1s"
breaker_failures = 1000  # the breaker has its own tests; here a 35% fault rate must not pause channels
max_attempts = 40
retry_backoff = 0.5

[[feeds]]
name = "all"

[[channels]]
name = "hook-a"
type = "webhook"
url = "{hook_a.url}{hook_a.hook_path}"
secret = "{SIGNING_SECRET}"

[[channels]]
name = "hook-b"
type = "webhook"
url = "{hook_b.url}{hook_b.hook_path}"
secret = "{SIGNING_SECRET}"

[[channels]]
name = "mastodon"
type = "mastodon"
api_base = "{mastodon.url}"
access_token = "{mastodon.token}"

[[channels]]
name = "telegram"
type = "telegram"
api_base = "{telegram.url}"
token = "{TOKEN}"
chat_id = "@tintuc_tayninh"

[[channels]]
name = "outbox"
type = "outbox"
path = "{tmp_path / "outbox.jsonl"}"

[[channels]]
name = "outbox-archive"
type = "outbox"
path = "{tmp_path / "archive.jsonl"}"
"""
        prefix = "chaos:"
        config = config_file(tmp_path, redis_server.url, prefix, channels)
        names = ["hook-a", "hook-b", "mastodon", "telegram", "outbox", "outbox-archive"]
        client = redis_py.Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=5)
        keys = Keys(prefix)
        store = Store(client, redis_py.Redis.from_url(redis_server.url), keys)
        ledger = Ledger(client, keys)

        stack.enter_context(beat(config, tmp_path / "beat.log"))
        running: list[tuple[AbstractContextManager[Popen[bytes]], Popen[bytes]]] = []

        def start_worker(n: int) -> None:
            manager = worker(config, tmp_path / f"worker-{n}.log", beat=False)
            running.append((manager, manager.__enter__()))

        def stop_all() -> None:
            for manager, _ in running:
                manager.__exit__(None, None, None)

        stack.callback(stop_all)
        start_worker(0)
        start_worker(1)
        wait_for(lambda: store.first_poll_done("articles"), timeout=60, what="the first poll")

        started = time.monotonic()
        articles = tmp_path / "articles"
        for n in range(ARTICLES):  # written in four batches while the chaos begins
            final = articles / f"chaos-{n}.md"
            draft = articles / f".chaos-{n}.md.tmp"
            draft.write_text(
                f'---\nurl: "https://portal.example.gov.vn/tin/chaos-{n}.html"\ntitle: "Tin số {n}"\n---\n'
                f"Nội dung bài {n}.\n",
                encoding="utf-8",
            )
            draft.rename(final)
            if n % 50 == 49:
                time.sleep(1.0)

        kills = 0
        redis_restarts = 0
        for round_ in range(KILLS):
            time.sleep(KILL_EVERY)
            manager, child = running.pop(0)
            kill_group(child)  # SIGKILL, whatever it was doing
            manager.__exit__(None, None, None)
            kills += 1
            start_worker(2 + round_)
            if round_ == KILLS // 2:
                redis_server.kill()
                redis_server.start()  # same port, same AOF
                redis_restarts += 1
        chaos_seconds = time.monotonic() - started

        def settled() -> bool:
            records = [ledger.get(f"{a.id}", c) for a in store_articles() for c in names]
            return len(records) == ARTICLES * len(names) and all(r is not None and r.state in FINAL for r in records)

        def store_articles() -> list:  # type: ignore[type-arg]
            ids = client.zrange(keys.articles_by_time(), 0, -1)
            return [a for a in store.get_many(ids) if ARTICLE.search(a.url)]

        try:
            wait_for(settled, timeout=150, interval=1.0, what="every delivery to settle")
        except AssertionError:
            found = [ledger.get(a.id, c) for a in store_articles() for c in names]
            late = Counter(r.state if r else "missing" for r in found)
            raise AssertionError(f"not settled: {dict(late)} (logs: {tmp_path})") from None
        settle_seconds = time.monotonic() - started

        records = [ledger.get(a.id, c) for a in store_articles() for c in names]
        number = {a.id: int(ARTICLE.search(a.url).group(1)) for a in store_articles()}  # type: ignore[union-attr]
        counted = {
            "hook-a": posted([p["body"] for p in hook_a.posts]),
            "hook-b": posted([p["body"] for p in hook_b.posts]),
            "mastodon": posted(list(mastodon.statuses)),
            "telegram": posted(list(telegram.posts)),
            "outbox": posted((tmp_path / "outbox.jsonl").read_text(encoding="utf-8").splitlines()),
            "outbox-archive": posted((tmp_path / "archive.jsonl").read_text(encoding="utf-8").splitlines()),
        }
        states = Counter(r.state for r in records if r is not None)
        doubles = [(c, n) for c, found in counted.items() for n, times in found.items() if times > 1]
        wrong = [
            (r.channel, number[r.article_id], r.state, counted[r.channel][number[r.article_id]])
            for r in records
            if r is not None
            and not (
                (r.state == "sent" and counted[r.channel][number[r.article_id]] == 1)
                or (r.state == "unknown" and counted[r.channel][number[r.article_id]] <= 1)
            )
        ]
        injected = sum((f.injected for f in faults), Counter())
        with capsys.disabled():
            print(  # noqa: T201 (the figures this test exists to show)
                f"\nchaos: {ARTICLES} articles x {len(names)} channels = {ARTICLES * len(names)} deliveries; "
                f"{kills} worker kills, {redis_restarts} Redis restart; faults injected: {dict(injected)}; "
                f"platform requests: {sum(sum(f.seen.values()) for f in faults)}; posts the platforms accepted: "
                f"{ {name: sum(found.values()) for name, found in counted.items()} }\n"
                f"chaos: ledger {dict(states)}; sent exactly once (as the fakes counted): {states['sent']}; "
                f"unknown: {states['unknown']} (kills: {kills}); posted twice: {len(doubles)}; "
                f"lost: {ARTICLES * len(names) - len(records)}; chaos phase {chaos_seconds:.0f}s, "
                f"all settled after {settle_seconds:.0f}s"
            )
        assert len(records) == ARTICLES * len(names), "a delivery was lost"
        assert doubles == [], f"posted twice: {doubles[:10]}"
        assert wrong == [], f"ledger and platform disagree (channel, article, state, posts): {wrong[:10]}"
        assert states["unknown"] <= kills
        assert set(states) <= {"sent", "unknown"}, states
        assert injected["503"] and injected["429"] and injected["timeout"]
