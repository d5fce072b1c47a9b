"""The `distributor` command: run everything, or one part, and operate it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from distributor.errors import ConfigError, SourceError
from distributor.settings import Settings, load_settings

app = typer.Typer(help="RSS and social distribution for news publishers.", no_args_is_help=True)
feeds_app = typer.Typer(help="Feed files and links.", no_args_is_help=True)
deliveries_app = typer.Typer(help="List, retry or cancel deliveries.", invoke_without_command=True)
shares_app = typer.Typer(help="Share counts.", no_args_is_help=True)
sources_app = typer.Typer(help="Source tools.", no_args_is_help=True)
channels_app = typer.Typer(help="Channel tools.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(shares_app, name="shares")
app.add_typer(sources_app, name="sources")
app.add_typer(channels_app, name="channels")

console = Console(markup=False, highlight=False)  # titles like "[Video] ..." are text, not markup
err = Console(stderr=True)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $DISTRIBUTOR_CONFIG or config/distributor.toml)."),
]
HostOption = Annotated[Optional[str], typer.Option(help="Listen address (default from [server]).")]  # noqa: UP045
PortOption = Annotated[Optional[int], typer.Option(help="Listen port (default from [server]).")]  # noqa: UP045


def error(message: str) -> None:
    """Print an error: user text is never read as markup (a `[[channels]]` must stay) nor wrapped."""
    err.print(Text("error: ", style="red") + Text(message), soft_wrap=True, highlight=False)


def ok(message: str) -> None:
    console.print(Text("ok ", style="green") + Text(message), soft_wrap=True)


def warning(message: str) -> None:
    err.print(Text("warning: ", style="yellow") + Text(message), soft_wrap=True, highlight=False)


def _settings(config: Path | None) -> Settings:
    if config is not None:
        os.environ["DISTRIBUTOR_CONFIG"] = str(config)  # children (worker, beat) read the same file
    try:
        return load_settings(config)
    except ConfigError as exc:
        for problem in exc.problems:
            error(problem)
        raise typer.Exit(2) from None


def _context(config: Path | None):  # type: ignore[no-untyped-def]
    from distributor.context import get_context

    settings = _settings(config)
    ctx = get_context(settings)
    os.environ["DISTRIBUTOR_REDIS_URL"] = ctx.redis_url  # children share this Redis
    return ctx


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the configuration; print every problem with its location."""
    settings = _settings(config)
    counts = f"{len(settings.sources)} sources, {len(settings.feeds)} feeds, {len(settings.channels)} channels"
    ok(f"{settings.config_path}: {counts}")


def _worker_argv(settings: Settings, beat: bool) -> list[str]:
    argv = [
        "worker", "--loglevel", "INFO", "--pool", settings.worker.pool,
        "--concurrency", str(settings.worker.concurrency), "-Q", "distributor",
    ]  # fmt: skip
    if beat:
        argv.append("--beat")
    return argv


@app.command()
def run(config: ConfigOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """Everything on one machine: (embedded) Redis, a worker with beat, and the HTTP server."""
    _logging()
    ctx = _context(config)
    command = [sys.executable, "-m", "celery", "-A", "worker", *_worker_argv(ctx.settings, beat=True)]
    worker = subprocess.Popen(command, env=os.environ.copy())
    console.print(f"Redis: {ctx.redis_url}  worker pid {worker.pid}")
    # uvicorn re-raises SIGTERM after its own shutdown; turn it into SystemExit so that the worker
    # and the embedded Redis below are stopped cleanly too.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        _serve(ctx, host, port)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        from distributor.redis import embedded_servers

        for server in embedded_servers():
            server.stop()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve(ctx, host: str | None, port: int | None) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    from distributor.web.app import create_app

    settings = ctx.settings
    bind_host = host or settings.server.host
    bind_port = settings.server.port if port is None else port
    console.print(f"Serving on http://{bind_host}:{bind_port}  (feeds at /feeds/<name>.rss, dashboard at /dashboard)")
    uvicorn.run(
        create_app(ctx),
        host=bind_host,
        port=bind_port,
        loop="uvloop",
        http="httptools",
        log_level="info",
        access_log=settings.server.access_log,
    )


@app.command()
def serve(config: ConfigOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """Only the HTTP server (feeds, shares, API, dashboard)."""
    _logging()
    _serve(_context(config), host, port)


@app.command()
def worker(
    config: ConfigOption = None, beat: Annotated[bool, typer.Option(help="Also run beat in this process.")] = False
) -> None:
    """Only a Celery worker (run as many as you like, on many machines)."""
    ctx = _context(config)
    from worker.celery_app import app as celery_app

    celery_app.worker_main(_worker_argv(ctx.settings, beat))


@app.command()
def beat(config: ConfigOption = None) -> None:
    """Only the beat scheduler (a Redis lock keeps a single one active)."""
    _context(config)
    from worker.celery_app import app as celery_app

    celery_app.start(["beat", "--loglevel", "INFO"])


@app.command()
def publish(path_or_url: str, config: ConfigOption = None, announce: bool = True) -> None:
    """Ingest one article file or page now, update the feeds, and post it to the channels."""
    from distributor import pipeline
    from distributor.inline import InlineDispatcher
    from distributor.reader import read_one

    ctx = _context(config)
    try:
        draft = read_one(ctx, path_or_url)
        article = pipeline.to_article(ctx, draft, "cli")
    except (SourceError, ValueError, OSError) as exc:
        error(f"{path_or_url}: {exc}")
        raise typer.Exit(1) from None
    dispatch = InlineDispatcher(ctx)
    change, feeds = pipeline.ingest(ctx, article, dispatch, announce=announce)
    if feeds:
        dispatch.rebuild(sorted(feeds))
    console.print(f"{article.id} {change}: {article.title}")
    for _, channel, result in dispatch.results:
        console.print(f"  {channel}: {result.state} {result.detail}")


@feeds_app.command("build")
def feeds_build(
    out: Annotated[Path, typer.Option(help="Folder to write the feed files to.")], config: ConfigOption = None
) -> None:
    """Render every feed in every format into a folder."""
    from distributor import rebuild
    from distributor.feeds.build import FORMATS

    ctx = _context(config)
    rebuild.register_configured_feeds(ctx)
    names = sorted(ctx.store.feed_meta())
    rebuild.rebuild_feeds(ctx, names)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        for fmt, (_, ext) in FORMATS.items():
            body = ctx.store.load_render(name, fmt).get(b"body")
            if body is not None:
                rebuild.write_public(out / f"{name}.{ext}", body)
                console.print(f"wrote {out / f'{name}.{ext}'}")


@feeds_app.command("links")
def feeds_links(config: ConfigOption = None) -> None:
    """Print the <link rel="alternate"> tags to put in the portal's pages."""
    from html import escape

    from distributor import rebuild
    from distributor.feeds.build import FORMATS, feed_url

    ctx = _context(config)
    rebuild.register_configured_feeds(ctx)
    for name, meta in sorted(ctx.store.feed_meta().items()):
        spec = rebuild.spec_for(ctx, name, meta)
        for fmt, (media_type, _) in FORMATS.items():
            kind = media_type.split(";")[0]
            href = escape(feed_url(spec, fmt))
            print(f'<link rel="alternate" type="{kind}" title="{escape(spec.title)}" href="{href}">')


@app.command()
def preview(
    article: str,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    config: ConfigOption = None,
) -> None:
    """What each channel would post for ARTICLE (an id, a URL or a file), with its length and limit."""
    from distributor.reader import find_article

    ctx = _context(config)
    try:
        found = find_article(ctx, article)
    except (SourceError, ValueError, OSError) as exc:
        error(f"{article}: {exc}")
        raise typer.Exit(1) from None
    names = [channel] if channel else [c.name for c in ctx.settings.channels]
    for name in names:
        try:
            adapter = ctx.channel(name)
        except KeyError:
            error(f"no channel named {name!r}")
            raise typer.Exit(1) from None
        post = adapter.render(found)
        fits = Text("fits", style="green") if post.length <= post.limit else Text("too long", style="red")
        console.rule(Text(f"{name} ({adapter.kind}): {post.length}/{post.limit} ") + fits)
        console.print(post.text, markup=False, highlight=False, soft_wrap=True)  # verbatim


@deliveries_app.callback()
def deliveries(
    ctx_: typer.Context,
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    limit: int = 50,
    config: ConfigOption = None,
) -> None:
    """List recent deliveries (or use: retry, cancel)."""
    if ctx_.invoked_subcommand is not None:
        return
    ctx = _context(config)
    table = Table()
    table.add_column("article", no_wrap=True, min_width=16)  # ids are copied into retry/cancel
    table.add_column("channel", no_wrap=True)
    for heading in ("state", "attempts", "post", "message", "updated"):
        table.add_column(heading)
    for d in ctx.ledger.recent(limit, state):
        when = datetime.fromtimestamp(d.updated).strftime("%Y-%m-%d %H:%M:%S") if d.updated else ""
        table.add_row(d.article_id, d.channel, d.state, str(d.attempts), d.post_url or d.post_id, d.error, when)
    console.print(table)


@deliveries_app.command("retry")
def deliveries_retry(article_id: str, channel: str, config: ConfigOption = None) -> None:
    """Put a failed, unknown or cancelled delivery back in the queue."""
    ctx = _context(config)
    if not ctx.ledger.requeue(article_id, channel):
        error(f"no failed/unknown/cancelled delivery {article_id} -> {channel}")
        raise typer.Exit(1)
    from worker.tasks import deliver

    deliver.delay(article_id, channel)
    console.print(f"queued {article_id} -> {channel}")


@deliveries_app.command("cancel")
def deliveries_cancel(article_id: str, channel: str, config: ConfigOption = None) -> None:
    """Cancel a pending, failed or unknown delivery (it will never be posted)."""
    ctx = _context(config)
    if not ctx.ledger.cancel(article_id, channel, "cancelled by the operator"):
        error(f"nothing to cancel for {article_id} -> {channel}")
        raise typer.Exit(1)
    console.print(f"cancelled {article_id} -> {channel}")


@shares_app.command("top")
def shares_top(period: str = "week", limit: int = 10, config: ConfigOption = None) -> None:
    """The most shared articles of a period (day, week, month, all)."""
    ctx = _context(config)
    try:
        rows = ctx.shares.top(period, limit)
    except ValueError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    articles = {a.id: a for a in ctx.store.get_many([r[0] for r in rows])}
    table = Table("shares", "article", "title")
    for article_id, count in rows:
        table.add_row(str(count), article_id, articles[article_id].title if article_id in articles else "(removed)")
    console.print(table)


@sources_app.command("test")
def sources_test(name: str, config: ConfigOption = None) -> None:
    """Fetch a source once; print what was found and what would change. Writes nothing."""
    from distributor import pipeline

    ctx = _context(config)
    try:
        source = ctx.source(name)
    except KeyError:
        error(f"no source named {name!r}")
        raise typer.Exit(1) from None
    try:
        result = source.poll({})
    except SourceError as exc:
        error(str(exc))
        raise typer.Exit(1) from None
    table = Table("would", "published", "title", "url")
    for draft in result.drafts:
        try:
            article = pipeline.to_article(ctx, draft, name)
        except ValueError as exc:
            table.add_row("skip", "", str(exc), draft.url or "")
            continue
        stored = ctx.store.get(article.id)
        action = (
            "add" if stored is None else ("unchanged" if stored.content_hash() == article.content_hash() else "update")
        )
        table.add_row(action, article.published.isoformat(), article.title, article.url)
    console.print(table)
    for problem in result.errors:
        warning(str(problem))


@channels_app.command("test")
def channels_test(name: str, config: ConfigOption = None) -> None:
    """Check a channel's credentials with a read-only call; posts nothing."""
    from distributor.errors import ChannelError

    ctx = _context(config)
    try:
        adapter = ctx.channel(name)
    except KeyError:
        error(f"no channel named {name!r}")
        raise typer.Exit(1) from None
    try:
        ok(f"{name}: {adapter.check()}")
    except ChannelError as exc:
        error(f"{name}: {exc.message}")
        raise typer.Exit(1) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
