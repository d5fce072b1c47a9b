"""Cached-feed serving rate beside a plain response of the same HTTP stack, in the same run.

    python bench/bench_serving.py [--seconds 5] [--connections 32]

Starts the real app (uvicorn + uvloop + httptools, one process) on loopback against a real Redis
(DISTRIBUTOR_REDIS_URL, else the machine's, else an embedded server), renders a 50-item feed with
full content, then loads: a plain 2-byte response, the feed (gzip, as readers ask), the feed
uncompressed, and a conditional request answered 304. Load comes from `wrk` when installed (apt
install wrk), else from a small keep-alive Python client (slower: it bounds the figures).
Target: the cached feed at least half the plain rate.
"""

from __future__ import annotations

import argparse
import asyncio
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

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distributor import pipeline, rebuild
from distributor.context import Context
from distributor.normalize import Draft
from distributor.settings import settings_from_dict

PARAGRAPH = "<p>" + "Hội nghị sơ kết công tác dân vận 6 tháng đầu năm và triển khai nhiệm vụ. " * 12 + "</p>"


def redis_url(data_dir: Path) -> str:
    configured = os.environ.get("DISTRIBUTOR_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        import redis

        redis.Redis.from_url(configured, socket_connect_timeout=1).ping()
        return configured
    except Exception:
        from distributor.redis import resolve_url

        return resolve_url("", data_dir)


def prepare(data_dir: Path) -> Context:
    settings = settings_from_dict(
        {
            "site": {"title": "Bench", "url": "https://portal.example.gov.vn"},
            "redis": {"url": redis_url(data_dir), "key_prefix": "bench-serving:"},
            "paths": {"data_dir": str(data_dir)},
            "feeds": [{"name": "all", "limit": 50}],
        }
    )
    ctx = Context.create(settings)
    for key in ctx.redis.scan_iter(match="bench-serving:*"):
        ctx.redis.delete(key)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(50):
        draft = Draft(
            url=f"https://portal.example.gov.vn/tin/{n}",
            title=f"Bài viết số {n}: Ban Dân vận triển khai nhiệm vụ",
            content=PARAGRAPH * 6,
            published=(start + timedelta(hours=n)).isoformat(),
            categories=["Tin Tức Sự Kiện"],
        )
        ctx.store.upsert(article := pipeline.to_article(ctx, draft, "bench"))
        pipeline.publish(ctx, article)
    rebuild.register_configured_feeds(ctx)
    rebuild.rebuild_feeds(ctx, ["all"])
    return ctx


def serve(data_dir: str, port: int) -> None:
    import uvicorn
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from distributor.web.app import create_app

    ctx = prepare(Path(data_dir))
    app = create_app(ctx, enqueue=lambda task, args: None)

    async def plain(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app.router.routes.append(Route("/plain", plain))
    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning", access_log=False
    )


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> float:
    args = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} error responses\n{output}")
    return float(match.group(1)) if match else 0.0


async def python_client(url: str, seconds: int, connections: int, headers: dict[str, str]) -> float:
    host, port_path = url.removeprefix("http://").split(":", 1)
    port, _, path = port_path.partition("/")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET /{path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
    done = 0
    deadline = time.monotonic() + seconds

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            done += 1
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return done / seconds


def measure(url: str, seconds: int, connections: int, headers: dict[str, str]) -> float:
    if shutil.which("wrk"):
        return wrk(url, seconds, connections, headers)
    return asyncio.run(python_client(url, seconds, connections, headers))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    options = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="bench-serving-")
    port = 18000 + os.getpid() % 1000
    server = multiprocessing.Process(target=serve, args=(data_dir, port), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(f"{base}/feeds/all.rss", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    feed = requests.get(f"{base}/feeds/all.rss", timeout=5)
    gz = requests.get(f"{base}/feeds/all.rss", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=5)
    print(f"feed: 50 items, {len(feed.content) / 1024:.0f} KiB ({len(gz.raw.read()) / 1024:.0f} KiB gzipped)")
    client = "wrk" if shutil.which("wrk") else "python client"
    print(f"load: {client}, {options.connections} connections, {options.seconds}s each")
    try:
        plain = measure(f"{base}/plain", options.seconds, options.connections, {})
        gzipped = measure(f"{base}/feeds/all.rss", options.seconds, options.connections, {"Accept-Encoding": "gzip"})
        identity = measure(f"{base}/feeds/all.rss", options.seconds, options.connections, {})
        not_modified = measure(
            f"{base}/feeds/all.rss", options.seconds, options.connections, {"If-None-Match": feed.headers["ETag"]}
        )
    finally:
        server.terminate()
    print(f"plain response         {plain:10.0f} req/s")
    print(f"cached feed (gzip)     {gzipped:10.0f} req/s  {gzipped / plain:5.2f}x plain")
    print(f"cached feed (identity) {identity:10.0f} req/s  {identity / plain:5.2f}x plain")
    print(f"304 Not Modified       {not_modified:10.0f} req/s  {not_modified / plain:5.2f}x plain")
    verdict = "PASS" if gzipped >= plain / 2 else "FAIL"
    print(f"target: cached feed (as readers fetch it, gzip) >= 0.5x plain: {verdict}")


if __name__ == "__main__":
    main()
