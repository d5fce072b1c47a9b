"""/metrics after a known sequence of events, with the work done by a real Celery worker and the
figures served by a separate web process: posts, a retry and a failure per channel, the
publish-to-posted histogram, source polls, readers' shares and the broker's queue depth. The worker
logs in JSON here (`[logging] format = "json"`): its delivery events carry the article id, the
channel and the state, and never the bot token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import redis as redis_py
import requests
from prometheus_client.parser import text_string_to_metric_families

from distributor.keys import Keys
from distributor.ledger import Ledger
from distributor.store import Store
from tests.fakes.telegram import TOKEN, TelegramFake, error, rate_limited
from tests.integration.helpers import REPO, config_file, server, wait_for, worker

CHANNELS = """
[logging]
format = "json"

[[feeds]]
name = "all"

[[channels]]
name = "telegram"
type = "telegram"
api_base = "{api_base}"
token = "{token}"
chat_id = "@tintuc_tayninh"

[[channels]]
name = "outbox"
type = "outbox"
"""
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0 reader/{}"


LAST_TEXT: list[str] = []


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    text = requests.get(f"{base}/metrics", timeout=5).text
    LAST_TEXT.append(text)
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def metric(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def add_article(folder: Path, name: str, title: str) -> None:
    """Written beside, then moved in: a poll never reads half a file."""
    temporary = folder.parent / f"{name}.tmp"
    temporary.write_text(f'---\ntitle: "{title}"\n---\nNội dung.\n', encoding="utf-8")
    temporary.replace(folder / f"{name}.md")


def _healthy(base: str) -> dict[str, object] | None:
    answer = requests.get(f"{base}/healthz", timeout=5)
    return answer.json() if answer.status_code == 200 else None  # type: ignore[no-any-return]


def queue_tasks(config: Path, queue: str, n: int) -> None:
    """Send `n` harmless tasks to `queue` with the service's own Celery app (nobody consumes yet)."""
    code = (
        "from worker.celery_app import app\n"
        f"for _ in range({n}): app.send_task('worker.tasks.rebuild_all', queue={queue!r})\n"
    )
    env = {**os.environ, "DISTRIBUTOR_CONFIG": str(config)}
    env.pop("DISTRIBUTOR_REDIS_URL", None)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=60)


def test_metrics_after_a_known_sequence_of_events(tmp_path: Path, redis_url: str, prefix: str) -> None:
    client = redis_py.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys(prefix)
    store = Store(client, redis_py.Redis.from_url(redis_url), keys)
    ledger = Ledger(client, keys)
    folder = tmp_path / "articles"
    with TelegramFake() as fake:
        config = config_file(tmp_path, redis_url, prefix, CHANNELS.format(api_base=fake.url, token=TOKEN))
        with server(config, tmp_path / "web.log") as base:
            # Before any worker runs: three tasks wait in the engagement queue, none elsewhere.
            queue_tasks(config, "engagement", 3)
            found = samples(base)
            assert metric(found, "distributor_queue_depth", queue="engagement") == 3
            assert metric(found, "distributor_queue_depth", queue="deliver.telegram") == 0
            assert metric(found, "distributor_queue_depth", queue="distributor") == 0

            with worker(config, tmp_path / "worker.log"):
                wait_for(lambda: store.first_poll_done("articles"), what="the first poll")

                def settled(article_id: str, channel: str, state: str) -> bool:
                    record = ledger.get(article_id, channel)
                    return record is not None and record.state == state

                # Three articles posted everywhere; the first one's Telegram post after a 429.
                fake.then(rate_limited(1))
                for n in range(3):
                    add_article(folder, f"a{n}", f"Tin số {n}")
                    wait_for(lambda n=n: len(store.newest(0, 10)) == n + 1, what=f"article {n} to be read")
                    article_id = store.newest(0, 1)[0].id
                    wait_for(lambda a=article_id: settled(a, "telegram", "sent"), what=f"article {n} on Telegram")
                    wait_for(lambda a=article_id: settled(a, "outbox", "sent"), what=f"article {n} in the outbox")
                # A fourth one Telegram refuses for good; the outbox still posts it.
                fake.then(error(403, "Forbidden: bot is not a member of the channel chat"))
                add_article(folder, "a3", "Tin số 3")
                wait_for(lambda: len(store.newest(0, 10)) == 4, what="article 3 to be read")
                failed_id = store.newest(0, 1)[0].id
                wait_for(lambda: settled(failed_id, "telegram", "failed"), what="the failure to be recorded")
                wait_for(lambda: settled(failed_id, "outbox", "sent"), what="article 3 in the outbox")
                wait_for(lambda: client.llen(keys.broker_queue("engagement")) == 0, what="the queued tasks")
                # /healthz: the worker beats, and the beat embedded in it holds the lock.
                health = wait_for(lambda: _healthy(base), what="/healthz to be ok")
                assert health["beat_lock"]["held"] and health["beat_lock"]["host"] == socket.gethostname()
                os.kill(health["beat_lock"]["pid"], 0)  # a live process of this host
            # Stopped: /healthz is 503 at once (not 30 s later), and the beat released its lock.
            gone = requests.get(f"{base}/healthz", timeout=5)
            assert gone.status_code == 503 and gone.json()["worker"] == "stopped"
            assert gone.json()["beat_lock"] == {"held": False}

            # Readers share: two networks, one repeat (not counted), one bot (not counted).
            shared = store.newest(0, 10)[-1].id
            for network, ua in [("facebook", BROWSER.format(1)), ("facebook", BROWSER.format(1)),
                                ("zalo", BROWSER.format(2)), ("facebook", "facebookexternalhit/1.1")]:  # fmt: skip
                answer = requests.get(
                    f"{base}/s/{shared}/{network}", headers={"User-Agent": ua}, allow_redirects=False, timeout=5
                )
                assert answer.status_code == 302

            def shares_counted() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
                found = samples(base)
                counted = metric(found, "distributor_reader_shares_total", network="zalo")
                return found if counted == 1 else None

            found = wait_for(shares_counted, what="the share clicks to be counted")

    assert metric(found, "distributor_reader_shares_total", network="facebook") == 1
    assert metric(found, "distributor_delivery_outcomes_total", channel="telegram", outcome="posted") == 3
    assert metric(found, "distributor_delivery_outcomes_total", channel="telegram", outcome="retried") == 1
    assert metric(found, "distributor_delivery_outcomes_total", channel="telegram", outcome="failed") == 1
    assert metric(found, "distributor_delivery_outcomes_total", channel="outbox", outcome="posted") == 4
    assert metric(found, "distributor_delivery_outcomes_total", channel="outbox", outcome="failed") is None
    # The histogram has one observation per post this service made, and they took seconds here.
    assert metric(found, "distributor_publish_to_posted_seconds_count", channel="telegram") == 3
    assert metric(found, "distributor_publish_to_posted_seconds_count", channel="outbox") == 4
    assert metric(found, "distributor_publish_to_posted_seconds_bucket", channel="outbox", le="+Inf") == 4
    assert metric(found, "distributor_publish_to_posted_seconds_bucket", channel="outbox", le="60.0") == 4
    assert 0 < (metric(found, "distributor_publish_to_posted_seconds_sum", channel="outbox") or 0) < 240
    # Four polls found a new article each; the others (one a second) found nothing.
    assert metric(found, "distributor_source_polls_total", source="articles", outcome="new") == 4
    assert (metric(found, "distributor_source_polls_total", source="articles", outcome="unchanged") or 0) >= 1
    assert metric(found, "distributor_source_polls_total", source="articles", outcome="error") is None
    assert metric(found, "distributor_queue_depth", queue="engagement") == 0
    # The text itself, as Prometheus reads it.
    assert 'distributor_delivery_outcomes_total{channel="telegram",outcome="posted"} 3.0' in LAST_TEXT[-1]

    events = [json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines() if line.startswith("{")]
    deliveries = [e for e in events if e.get("event") == "delivery"]
    assert {(e["article_id"], e["channel"], e["state"]) for e in deliveries} >= {
        (failed_id, "telegram", "failed"),
        (failed_id, "outbox", "sent"),
    }
    retry = [e for e in deliveries if e["channel"] == "telegram" and e["state"] == "retry"]
    assert len(retry) == 1 and retry[0]["retry_in"] >= 1
    assert TOKEN not in (tmp_path / "worker.log").read_text()
