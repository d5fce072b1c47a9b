"""Share redirects under concurrent load, beside a plain 302 of the same HTTP stack in the same run.

    python bench/bench_shares.py [--seconds 10] [--connections 32] [--rounds 3]

Starts the real app (uvicorn + uvloop + httptools, one process) on loopback against its own
embedded Redis (or DISTRIBUTOR_REDIS_URL), with 200 articles. wrk (apt install wrk) sends every
request with a different user agent, across the articles and networks, so every click is a new
human share that the counting script must apply (no repeat, no limit: `client_limit = 0`).

Rows: a plain 302 (a constant redirect: what the stack costs); `/s/` as shipped (the answer from
memory, clicks applied in batches every `[shares] flush_interval`); and, for the record, the same
route awaiting its click's EVALSHA before answering (one round trip per click, article cached),
the design that measured 0.16-0.3x here. Redis commands per click come from INFO commandstats
(round trips: EVALSHA calls; commands: everything the scripts ran).

Target: `/s/` at least 0.7x the plain 302 rate.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import Result, _duration_ms, redis_url, verdict

from distributor import pipeline
from distributor.context import Context
from distributor.normalize import Draft
from distributor.settings import settings_from_dict

ARTICLES = 200
NETWORKS = ["facebook", "x", "telegram", "zalo", "linkedin", "email", "bluesky"]
PREFIX = "bench-shares:"


def settings_dict(url: str, data_dir: Path) -> dict[str, Any]:
    return {
        "site": {"title": "Bench", "url": "https://portal.example.gov.vn"},
        "redis": {"url": url, "key_prefix": PREFIX},
        "paths": {"data_dir": str(data_dir)},
        "shares": {"client_limit": 0},
    }


def prepare(ctx: Context) -> list[str]:
    for key in ctx.redis.scan_iter(match=f"{PREFIX}*"):
        ctx.redis.delete(key)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ids = []
    for n in range(ARTICLES):
        draft = Draft(
            url=f"https://portal.example.gov.vn/tin-tức/bài-viết-{n}?id={n}",
            title=f"Bài viết số {n}: hội nghị sơ kết công tác dân vận",
            content="<p>" + "nội dung bài viết " * 400 + "</p>",  # about 6 KB, as on the portal
            published=(start + timedelta(minutes=n)).isoformat(),
        )
        article = pipeline.to_article(ctx, draft, "bench")
        ctx.store.upsert(article)
        ids.append(article.id)
    return ids


def serve(settings: dict[str, Any], port: int) -> None:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Route

    from distributor.web import shares
    from distributor.web.app import create_app
    from distributor.web.state import state

    ctx = Context.create(settings_from_dict(settings))
    app = create_app(ctx, enqueue=lambda task, args: None)

    async def plain(request: Request) -> Response:
        return RedirectResponse("https://www.facebook.com/sharer/sharer.php?u=x", status_code=302)

    async def awaited(request: Request) -> Response:
        response = await shares.share(request)
        await state(request).click_path.counter.flush()  # this click's EVALSHA, awaited
        return response

    app.router.routes.append(Route("/plain/{article_id}/{network}", plain))
    app.router.routes.append(Route("/awaited/{article_id}/{network}", awaited))
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning")


def lua(prefix: str, ids: list[str]) -> str:
    """A wrk script: every request another article and network, and another reader."""
    return f"""
local ids = {{{", ".join(f'"{i}"' for i in ids)}}}
local nets = {{{", ".join(f'"{n}"' for n in NETWORKS)}}}
math.randomseed(os.time())
local n = math.random(1, 1000000000)
request = function()
  n = n + 1
  local path = "{prefix}" .. ids[n % #ids + 1] .. "/" .. nets[n % #nets + 1]
  return wrk.format("GET", path, {{["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0 bench/" .. n}})
end
"""


def wrk(url: str, seconds: int, connections: int, script: Path | None) -> tuple[Result, int]:
    args = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "5s"]
    args += ["-s", str(script)] if script else []
    output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    latency = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)\s*$", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)\s*$", output, re.MULTILINE)
    assert rate and count and latency and p50 and p99, output
    problems = [m.group(0) for m in re.finditer(r"(Non-2xx or 3xx responses: \d+|Socket errors: .*)", output)]
    result = Result(float(rate.group(1)), _duration_ms(p50.group(1)), _duration_ms(p99.group(1)),
                    _duration_ms(latency.group(1)), problems)  # fmt: skip
    return result, int(count.group(1))


def commandstats(url: str) -> dict[str, int]:
    stats = redis.Redis.from_url(url).info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def counted(ctx: Context, ids: list[str]) -> int:
    with ctx.redis.pipeline(transaction=False) as pipe:
        for article_id in ids:
            pipe.hget(ctx.keys.shares(article_id), "total")
        return sum(int(v or 0) for v in pipe.execute())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="plain / share pairs")
    options = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt install wrk")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-shares-"))
    url, own = redis_url(data_dir)
    settings = settings_dict(url, data_dir)
    ctx = Context.create(settings_from_dict(settings))
    ids = prepare(ctx)
    port = 19000 + os.getpid() % 1000
    server = multiprocessing.Process(target=serve, args=(settings, port), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{base}/healthz?scope=web", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    scripts = {}
    for prefix in ("/plain/", "/s/", "/awaited/"):
        path = data_dir / f"{prefix.strip('/')}.lua"
        path.write_text(lua(prefix, ids))
        scripts[prefix] = path
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; wrk, {options.connections} "
          f"connections, {options.seconds}s each; {ARTICLES} articles of about 6 KB; Redis: "
          f"{'its own embedded server' if own else url}")  # fmt: skip
    # plain and /s/ alternate (the machine is shared: each ratio compares neighbouring runs)
    runs: list[tuple[str, str, Path | None]] = []
    for n in range(1, options.rounds + 1):
        runs += [(f"plain 302 #{n}", "/", scripts["/plain/"])]
        runs += [(f"/s/ (from memory, batched) #{n}", "/", scripts["/s/"])]
    runs.append(("/s/ awaiting its EVALSHA", "/", scripts["/awaited/"]))
    results: dict[str, Result] = {}
    header = f"{'':38} {'req/s':>7} {'x plain':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  Redis per click"
    print(header, flush=True)
    try:
        for label, path, script in runs:
            before, applied = commandstats(url), counted(ctx, ids)
            result, requests_ = wrk(f"{base}{path}", options.seconds, options.connections, script)
            time.sleep(0.5)  # the last batch
            after, applied = commandstats(url), counted(ctx, ids) - applied
            results[label] = result
            notes = ""
            if not label.startswith("plain"):
                calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                trips = (calls.get("evalsha", 0) + calls.get("eval", 0)) / max(1, requests_)
                work = sum(v for k, v in calls.items() if k not in ("info",)) / max(1, requests_)
                notes = f"{trips:.3f} round trips, {work:.1f} commands; {applied}/{requests_} counted"
            plain = results[[k for k in results if k.startswith("plain")][-1]].rate
            figures = f"{result.rate:7.0f} {result.rate / plain:7.2f} {result.p50:7.1f} {result.p99:7.1f}"
            print(f"{label:38} {figures} {result.slowest:7.1f}  {'; '.join([notes, *result.problems])}", flush=True)
    finally:
        server.terminate()
    ratios = sorted(
        results[f"/s/ (from memory, batched) #{n}"].rate / results[f"plain 302 #{n}"].rate
        for n in range(1, options.rounds + 1)
    )
    ratio = ratios[len(ratios) // 2]
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"target: /s/ >= 0.7x the plain 302 rate: median {ratio:.2f}x ({shown}) {verdict(ratio >= 0.7)}")


if __name__ == "__main__":
    main()
