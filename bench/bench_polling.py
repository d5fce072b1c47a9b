"""A poll cycle over many unchanged feed sources, and extraction time per article page.

    python bench/bench_polling.py [--sources 500]

The feeds are served by a loopback HTTP server that answers 304 to a matching If-None-Match, as
real servers do. Redis is a fresh embedded redis-server, so its command counter measures us alone.
Prints seconds per cycle (sequential and with the worker's default 8 threads) and Redis commands
per unchanged source; then a directory source of --files unchanged files (a poll costs a stat per
file, not a parse: CPU per poll, against the same folder read the old way, parsing every file), and
the extraction time of the portal article fixture.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distributor import pipeline
from distributor.context import Context
from distributor.dates import zone
from distributor.inline import InlineDispatcher
from distributor.redis import EmbeddedRedis
from distributor.settings import settings_from_dict
from tests.fakes.server import FakeServer, Reply, Request

RSS = """<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Nguồn {n}</title>
<link>https://site{n}.example.vn/</link><description>d</description>
<item><title>Bài {n}</title><link>https://site{n}.example.vn/bai-{n}</link>
<pubDate>Tue, 13 Jul 2021 14:00:00 GMT</pubDate><description>Tóm tắt</description></item>
</channel></rss>"""


def feed_server() -> FakeServer:
    server = FakeServer()

    def handler(request: Request) -> Reply:
        n = request.match["n"] if request.match else "0"
        etag = f'"v1-{n}"'
        if request.header("If-None-Match") == etag:
            return Reply(304, b"", {"ETag": etag})
        return Reply(200, RSS.format(n=n).encode(), {"ETag": etag, "Content-Type": "application/rss+xml"})

    server.add("GET", r"/feed/(?P<n>\d+)\.xml", handler)
    return server.start()


def redis_commands(ctx: Context) -> int:
    return int(ctx.redis.info("stats")["total_commands_processed"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=500)
    parser.add_argument("--files", type=int, default=1000)
    options = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-polling-"))
    redis_server = EmbeddedRedis(data_dir)
    url = redis_server.start()
    server = feed_server()
    names = [f"feed{n}" for n in range(options.sources)]
    settings = settings_from_dict(
        {
            "site": {"title": "Bench", "url": "https://portal.example.gov.vn"},
            "redis": {"url": url},
            "paths": {"data_dir": str(data_dir)},
            "feeds": [{"name": "all"}],
            "sources": [
                {"name": name, "type": "feed", "url": f"{server.url}/feed/{n}.xml", "politeness": 0}
                for n, name in enumerate(names)
            ],
        }
    )
    ctx = Context.create(settings)
    dispatch = InlineDispatcher(ctx, deliver=False)
    try:
        started = time.perf_counter()
        for name in names:  # first cycle: everything is new
            pipeline.poll_source(ctx, name, dispatch)
        first = time.perf_counter() - started

        cycles = []
        for _ in range(3):
            before = redis_commands(ctx)
            started = time.perf_counter()
            reports = [pipeline.poll_source(ctx, name, dispatch) for name in names]
            cycles.append(time.perf_counter() - started)
            commands = redis_commands(ctx) - before - 1  # the INFO call itself
        assert all(r.not_modified for r in reports), "an unchanged source was not answered 304"

        with ThreadPoolExecutor(8) as pool:
            started = time.perf_counter()
            list(pool.map(lambda name: pipeline.poll_source(ctx, name, dispatch), names))
            threaded = time.perf_counter() - started
    finally:
        server.stop()
        redis_server.stop()

    print(f"{options.sources} feed sources on loopback (first cycle, all new, feeds rebuilt inline: {first:.2f}s)")
    cycle = statistics.median(cycles)
    print(f"unchanged cycle, sequential:  {cycle:.3f}s  ({cycle / options.sources * 1000:.2f} ms/source)")
    print(f"unchanged cycle, 8 threads:   {threaded:.3f}s  (the loopback server shares this process and its GIL)")
    print(f"Redis commands per unchanged source: {commands / options.sources:.2f}")
    print("HTTP requests per unchanged source:  1 (conditional GET answered 304)")

    directory(options.files)
    extraction()


def directory(files: int) -> None:
    """A directory source of `files` unchanged Markdown files, polled through the pipeline."""
    import os

    from distributor.sources.directory import DirectorySource

    data_dir = Path(tempfile.mkdtemp(prefix="bench-directory-"))
    folder = data_dir / "articles"
    folder.mkdir()
    old = time.time() - 3600
    for n in range(files):
        path = folder / f"bai-{n}.md"
        path.write_text(
            f"---\ntitle: Bài số {n} về kinh tế xã hội\npublished: 2021-07-13 08:{n % 60:02d}\ncategory: Tin Tức\n"
            f"tags: [kinh tế, xã hội]\n---\nĐoạn **một** của bài {n}.\n\nĐoạn hai, với [liên kết](https://x.vn).\n",
            encoding="utf-8",
        )
        os.utime(path, (old, old))
    redis_server = EmbeddedRedis(data_dir)
    url = redis_server.start()
    settings = settings_from_dict(
        {
            "site": {"title": "Bench", "url": "https://portal.example.gov.vn"},
            "redis": {"url": url},
            "paths": {"data_dir": str(data_dir)},
            "feeds": [{"name": "all"}],
            "sources": [{"name": "files", "type": "directory", "path": str(folder)}],
        }
    )
    ctx = Context.create(settings)
    dispatch = InlineDispatcher(ctx, deliver=False)
    try:
        pipeline.poll_source(ctx, "files", dispatch)  # the first poll reads everything
        polls = []
        for _ in range(5):
            started = time.process_time()
            report = pipeline.poll_source(ctx, "files", dispatch)
            polls.append(time.process_time() - started)
        assert report.not_modified, "an unchanged folder was read again"
        source = ctx.source("files")
        assert isinstance(source, DirectorySource)
        parses = []
        for _ in range(3):  # what every poll cost before: read and parse every file, then ingest them
            started = time.process_time()
            drafts = [source.read(path) for path in source.files()]
            for draft in drafts:
                pipeline.ingest(ctx, pipeline.to_article(ctx, draft, "files"), dispatch, announce=False)
            parses.append(time.process_time() - started)
        (folder / "bai-0.md").write_text("---\ntitle: Bài số 0, đã sửa\n---\nMới.\n", encoding="utf-8")
        os.utime(folder / "bai-0.md", (old + 60, old + 60))
        started = time.process_time()
        report = pipeline.poll_source(ctx, "files", dispatch)
        one_changed = time.process_time() - started
        assert report.updated, "the edited file was not seen"
    finally:
        redis_server.stop()
    poll = statistics.median(polls)
    print(f"directory source, {files} unchanged files: {poll * 1000:.1f} ms CPU per poll "
          f"({poll / files * 1e6:.0f} µs/file: a stat each, no parse)")  # fmt: skip
    print(f"  the same poll reading and parsing every file (as before): {statistics.median(parses):.2f} s CPU")
    print(
        f"  a poll after one of the {files} files was edited: {one_changed:.2f} s CPU "
        "(that file parsed, every draft ingested to find removals)"
    )


def extraction() -> None:
    fixture = Path(__file__).resolve().parents[1] / "tests" / "data" / "portal" / "article.html"
    if not fixture.exists():
        print("extraction: fixture tests/data/portal/article.html not found")
        return
    from distributor.extract import extract_article

    html = fixture.read_text(encoding="utf-8")
    tz = zone("Asia/Ho_Chi_Minh")
    extract_article(html, "https://portal.example.gov.vn/tin/a.aspx", tz=tz)  # warm-up
    times = []
    for _ in range(20):
        started = time.perf_counter()
        extract_article(html, "https://portal.example.gov.vn/tin/a.aspx", tz=tz)
        times.append(time.perf_counter() - started)
    median = statistics.median(times) * 1000
    print(f"extraction of the portal article page ({len(html) / 1024:.0f} KiB): median {median:.1f} ms")


if __name__ == "__main__":
    main()
