"""Deliveries per second and publish-to-posted latency, beside the rate of empty Celery tasks.

    python bench/bench_delivery.py [--articles 1000] [--channels 8] [--pool threads] [--rounds 3]
                                   [--concurrency 12] [--processes 4] [--in-flight 8] [--delay 0.05]

Real worker processes (`celery -A bench.empty_task worker`: the Distributor app plus one empty
task) on a fresh redis-server of their own (AOF on, as in production), so its command counters
measure this run alone. `--channels` webhook channels post to one loopback receiver that answers
every request after `--delay` seconds (the webhook fake: signature checked, deduplicated on the
delivery key), and records when each post arrived. Each channel's `max_in_flight` is `--in-flight`
(8): at the default of 2, a receiver answering in 50 ms caps 8 channels at 2 x 8 / 0.05 = 320
deliveries per second, and the bench would measure that cap rather than the service.

Rounds (`--rounds`, 3), each of 1. then 2. back to back, so that the machine's other load moves
both alike; every round is printed, and the round with the median ratio.

1. Empty tasks: `--empty` of them queued at once; tasks per second until the queue is drained.
2. Burst: `--articles` articles pushed at once (what `POST /api/articles` queues: one ingest task
   each), fanned out to every channel: deliveries per second from the first push to the last post,
   and Redis commands per delivery (everything the run sent, ingest and Celery included); CPU
   seconds per delivery and per empty task (the workers and Redis, from /proc), which the machine's
   other load changes less than the rates; Redis's share; the CPU this process spent per delivery
   (the receiver, standing in for the platform, and the pushes), taken from the same CPUs.
3. Paced: `--paced` articles pushed at `--pace` per second, well under capacity: latency from the
   push to each post and to the last of an article's channels (p50 / p99).

Targets (issue 14): deliveries per second at least 0.5x the empty-task rate; p99 under one second
from push to the last channel when nothing is spaced.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from distributor.redis import EmbeddedRedis  # noqa: E402
from tests.fakes.server import Reply, Request  # noqa: E402
from tests.fakes.webhook import SIGNING_SECRET, WebhookFake  # noqa: E402

PREFIX = "bench:"


class SlowReceiver(WebhookFake):
    """The webhook fake, answering after `delay` seconds, noting when each delivery arrived."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrived: dict[str, float] = {}  # delivery key (article:channel) -> time.time()
        super().__init__()
        self.nodelay = True  # answers as a real server does, without a delayed-ACK stall

    def _receive(self, request: Request) -> Reply:
        arrived = time.time()
        time.sleep(self.delay)
        reply = super()._receive(request)
        key = request.header("X-Distributor-Delivery") or ""
        if reply.status == 201:
            self.arrived.setdefault(key, arrived)
        return reply


def write_config(path: Path, redis_url: str, receiver: SlowReceiver, channels: int, options: Any) -> None:
    hooks = "".join(
        f'\n[[channels]]\nname = "hook{n}"\ntype = "webhook"\nurl = "{receiver.url}{receiver.hook_path}"\n'
        f'secret = "{SIGNING_SECRET}"\nmax_in_flight = {options.in_flight}\n'
        for n in range(channels)
    )
    path.write_text(
        f"""
[site]
title = "Bench"
url = "https://portal.example.gov.vn"

[redis]
url = "{redis_url}"
key_prefix = "{PREFIX}"

[paths]
data_dir = "{path.parent / "data"}"

[worker]
pool = "{options.pool}"
concurrency = {options.concurrency}
{hooks}""",
        encoding="utf-8",
    )


def start_workers(config: Path, options: Any, log: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "DISTRIBUTOR_CONFIG": str(config), "PYTHONPATH": str(REPO)}
    env.pop("DISTRIBUTOR_REDIS_URL", None)
    children = []
    for n in range(options.processes):
        args = [sys.executable, "-m", "celery", "-A", "bench.empty_task", "worker", "-n", f"bench{n}@%h"]
        args += ["--pool", options.pool, "--concurrency", str(options.concurrency)]  # every queue (one per channel)
        args += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        out = log.open("ab")
        children.append(subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT))
    return children


def cpu_seconds(roots: list[int]) -> float:
    """User + system CPU seconds of these processes and all their descendants (prefork children),
    from /proc (Linux): what the service spent, however the machine's other load slowed it."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    wanted = set(roots)
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in wanted} - wanted
        wanted |= more
        grew = bool(more)
    return sum(times.get(pid, 0.0) for pid in wanted)


def commands(client: redis.Redis) -> int:
    """Commands the server ran (scripts' inner calls included), minus our own INFO calls."""
    return int(client.info("stats")["total_commands_processed"])


def drained(client: redis.Redis) -> bool:
    """Every queue (the default one and each channel's) empty, nothing unacknowledged."""
    queues = [key for key in client.scan_iter(match=f"{PREFIX}celery:*") if not key.endswith(b"unacked")]
    busy = [key for key in queues if client.type(key) == b"list" and client.llen(key)]
    return not busy and client.hlen(f"{PREFIX}celery:unacked") == 0


def wait(check: Any, timeout: float, what: str, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def payload(run: str, n: int) -> dict[str, Any]:
    return {
        "url": f"https://portal.example.gov.vn/tin/{run}-{n}.html",
        "title": f"Bài {n}: Ủy ban nhân dân tỉnh họp phiên thường kỳ tháng {n % 12 + 1}",
        "summary": "Sáng nay, Ủy ban nhân dân tỉnh tổ chức phiên họp thường kỳ để đánh giá tình hình kinh tế xã hội.",
        "content": "<p>Nội dung bài viết.</p>" * 20,
        "categories": ["Tin Tức Sự Kiện"],
        "tags": ["kinh tế", "xã hội"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo", "gevent"])
    parser.add_argument("--concurrency", type=int, default=12, help="threads per worker process")
    parser.add_argument("--processes", type=int, default=4, help="worker processes (each with --concurrency)")
    parser.add_argument("--in-flight", type=int, default=8, help="each channel's max_in_flight")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds the receiver takes to answer")
    parser.add_argument("--empty", type=int, default=4000, help="empty tasks for the baseline")
    parser.add_argument("--rounds", type=int, default=3, help="empty tasks then the burst, this many times")
    parser.add_argument("--paced", type=int, default=100, help="articles pushed at --pace for the latency")
    parser.add_argument("--pace", type=float, default=5.0, help="articles per second in the paced run")
    options = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    embedded = EmbeddedRedis(tmp / "redis")
    url = embedded.start()
    receiver = SlowReceiver(options.delay).start()
    config = tmp / "distributor.toml"
    write_config(config, url, receiver, options.channels, options)
    os.environ["DISTRIBUTOR_CONFIG"] = str(config)
    os.environ.pop("DISTRIBUTOR_REDIS_URL", None)
    from bench.empty_task import app  # configured from the file just written

    client = redis.Redis.from_url(url)
    workers = start_workers(config, options, tmp / "worker.log")
    try:
        for _ in range(20):  # warm-up: every worker connected and its pool started
            app.send_task("bench.empty")
        wait(lambda: drained(client), 60, "the workers to start")
        time.sleep(1.0)

        service = [child.pid for child in workers] + ([embedded.process.pid] if embedded.process else [])
        rounds = [
            measure_round(n, app, client, receiver, service, embedded, options) for n in range(1, options.rounds + 1)
        ]
        pushed: dict[str, float] = {}
        receiver.arrived.clear()
        for n in range(options.paced):
            pushed[payload("paced", n)["url"]] = time.time()
            app.send_task("worker.tasks.ingest", [payload("paced", n), "push", True])
            time.sleep(1 / options.pace)
        wait(lambda: len(receiver.arrived) >= options.paced * options.channels, 120, "the paced posts", 0.05)
        paced = latencies(receiver, pushed, "paced")
    finally:
        for child in workers:
            child.terminate()
        for child in workers:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        receiver.stop()
        embedded.stop()

    pool = f"{options.processes} x {options.pool} pool, concurrency {options.concurrency}"
    print(f"{options.articles} articles x {options.channels} webhook channels, receiver answering in "
          f"{options.delay * 1000:.0f} ms; {pool}; {os.cpu_count()} CPUs; {options.rounds} rounds, each "
          f"{options.empty} empty tasks then the burst")  # fmt: skip
    for r in rounds:
        print(f"round {r.number}: empty {r.empty_rate:5.0f} tasks/s ({r.empty_cpu * 1000:.2f} ms CPU each), "
              f"deliveries {r.rate:4.0f}/s ({r.delivery_cpu * 1000:.2f} ms CPU each, Redis {r.redis_cpu * 1000:.2f} "
              f"of it; receiver {r.receiver_cpu * 1000:.2f} ms) = {r.ratio:.2f}x")  # fmt: skip
    mid = sorted(rounds, key=lambda r: r.ratio)[len(rounds) // 2]
    print(f"empty Celery tasks:      {mid.empty_rate:7.0f} tasks/s        {mid.empty_commands:5.1f} Redis commands, "
          f"{mid.empty_cpu * 1000:.2f} ms CPU each (workers and Redis)  [median round: {mid.number}]")  # fmt: skip
    print(f"deliveries (burst):      {mid.rate:7.0f} deliveries/s   {mid.per_delivery:5.1f} Redis commands each "
          f"(ingest and Celery included)  = {mid.ratio:.2f}x the empty-task rate (target >= 0.5x; median of "
          f"{', '.join(f'{r.ratio:.2f}' for r in rounds)})")  # fmt: skip
    print(f"  CPU per delivery (workers and Redis, ingest and Celery included): {mid.delivery_cpu * 1000:.2f} ms "
          f"= {mid.empty_cpu / mid.delivery_cpu:.2f}x an empty task's; Redis's share "
          f"{mid.redis_cpu * 1000:.2f} ms")  # fmt: skip
    print(f"  CPU per delivery in this process (the receiver standing in for the platform, and the pushes): "
          f"{mid.receiver_cpu * 1000:.2f} ms, taken from the same {os.cpu_count()} CPUs")  # fmt: skip
    print(f"  burst latency push -> post: p50 {mid.burst[0]:.2f}s  p99 {mid.burst[1]:.2f}s (queued behind the burst)")
    print(f"paced ({options.pace:g} articles/s = {options.pace * options.channels:g} deliveries/s), push -> post: "
          f"p50 {paced[0] * 1000:.0f} ms  p99 {paced[1] * 1000:.0f} ms; "
          f"push -> last of {options.channels} channels: p50 {paced[2] * 1000:.0f} ms  p99 {paced[3] * 1000:.0f} ms "
          "(target p99 < 1 s)")  # fmt: skip


@dataclass
class Round:
    number: int
    empty_rate: float
    empty_commands: float
    empty_cpu: float
    rate: float
    per_delivery: float
    delivery_cpu: float
    redis_cpu: float
    receiver_cpu: float
    burst: tuple[float, float, float, float]

    @property
    def ratio(self) -> float:
        return self.rate / self.empty_rate


def measure_round(
    number: int, app: Any, client: redis.Redis, receiver: SlowReceiver, service: list[int], embedded: Any, options: Any
) -> Round:
    """Empty tasks, then the burst, back to back: the machine's other load moves both alike."""
    before, cpu = commands(client), cpu_seconds(service)
    started = time.time()
    for _ in range(options.empty):
        app.send_task("bench.empty")
    wait(lambda: drained(client), 300, "the empty tasks")
    empty_rate = options.empty / (time.time() - started)
    empty_commands = (commands(client) - before) / options.empty
    empty_cpu = (cpu_seconds(service) - cpu) / options.empty

    total = options.articles * options.channels
    receiver.arrived.clear()
    pushed: dict[str, float] = {}
    redis_only = [embedded.process.pid] if embedded.process else []
    before, cpu, own, redis_cpu = commands(client), cpu_seconds(service), time.process_time(), cpu_seconds(redis_only)
    for n in range(options.articles):
        pushed[payload(f"burst{number}", n)["url"]] = time.time()
        app.send_task("worker.tasks.ingest", [payload(f"burst{number}", n), "push", True])
    wait(lambda: len(receiver.arrived) >= total, 600, f"{total} posts", interval=0.05)
    wait(lambda: drained(client), 60, "the queue to drain")
    last = max(receiver.arrived.values())
    return Round(
        number=number,
        empty_rate=empty_rate,
        empty_commands=empty_commands,
        empty_cpu=empty_cpu,
        rate=total / (last - min(pushed.values())),
        per_delivery=(commands(client) - before) / total,
        delivery_cpu=(cpu_seconds(service) - cpu) / total,
        redis_cpu=(cpu_seconds(redis_only) - redis_cpu) / total,
        receiver_cpu=(time.process_time() - own) / total,
        burst=latencies(receiver, pushed, "burst"),
    )


def latencies(receiver: SlowReceiver, pushed: dict[str, float], run: str) -> tuple[float, float, float, float]:
    """p50 and p99 of push -> each post, then of push -> an article's last post."""
    from distributor.urls import article_id, canonical_url

    by_id = {article_id(canonical_url(url)): when for url, when in pushed.items()}
    each: list[float] = []
    last: dict[str, float] = {}
    for key, arrived in receiver.arrived.items():
        article = key.rpartition(":")[0]
        if article not in by_id:
            continue
        each.append(arrived - by_id[article])
        last[article] = max(last.get(article, 0.0), arrived - by_id[article])
    lasts = list(last.values())
    return percentile(each, 0.5), percentile(each, 0.99), percentile(lasts, 0.5), percentile(lasts, 0.99)


if __name__ == "__main__":
    threading.excepthook = lambda args: None  # a receiver thread cut off at shutdown is not news
    main()
