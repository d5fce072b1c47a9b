"""The `distributor` command: run everything, or one part, and operate it."""

from __future__ import annotations

import functools
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from distributor.cli_exit import ExitCode
from distributor.errors import ConfigError, SourceError
from distributor.i18n import cli_gettext as _
from distributor.ledger import AWAITING
from distributor.settings import Settings, load_settings
from distributor.urls import mask_url

app = typer.Typer(
    help=_("RSS and social distribution for news publishers."), no_args_is_help=True, rich_markup_mode=None
)
feeds_app = typer.Typer(help=_("Feed files and links."), no_args_is_help=True)
deliveries_app = typer.Typer(help=_("List, retry or cancel deliveries."), invoke_without_command=True)
shares_app = typer.Typer(help=_("Share counts."), no_args_is_help=True)
sources_app = typer.Typer(help=_("Source tools."), no_args_is_help=True)
channels_app = typer.Typer(help=_("Channel health (or use: test, resume)."), invoke_without_command=True)
recovery_app = typer.Typer(help=_("Redis lost the service's state: see it, acknowledge it."), no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(shares_app, name="shares")
app.add_typer(sources_app, name="sources")
app.add_typer(channels_app, name="channels")
app.add_typer(recovery_app, name="recovery")

console = Console(markup=False, highlight=False)  # titles like "[Video] ..." are text, not markup
err = Console(stderr=True)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help=_("Config file (default: $DISTRIBUTOR_CONFIG or config/distributor.toml).")),
]
HostOption = Annotated[Optional[str], typer.Option(help=_("Listen address (default: [server] host)."))]  # noqa: UP045
PortOption = Annotated[Optional[int], typer.Option(help=_("Listen port (default: [server] port)."))]  # noqa: UP045
ArticleIdArg = Annotated[str, typer.Argument(help=_("The article's id (see `distributor deliveries`)."))]
ChannelArg = Annotated[str, typer.Argument(help=_("The channel's name in the config."))]


def error(message: str) -> None:
    """Print an error: user text is never read as markup (a `[[channels]]` must stay) nor wrapped."""
    err.print(Text(_("error: "), style="red") + Text(message), soft_wrap=True, highlight=False)


def ok(message: str) -> None:
    console.print(Text(_("ok "), style="green") + Text(message), soft_wrap=True)


def warning(message: str) -> None:
    err.print(Text(_("warning: "), style="yellow") + Text(message), soft_wrap=True, highlight=False)


def fail(message: str, code: ExitCode = ExitCode.FAILED) -> typer.Exit:
    """Print an error and return the exit to raise: `raise fail(...)` keeps the code documented."""
    error(message)
    return typer.Exit(code)


def said(exc: BaseException) -> str:
    """An error's message in the operator's language where it carries its template
    (`errors.Refusal`); other errors as they are."""
    from distributor import i18n

    return i18n.said(exc, i18n.cli_locale())


def emit_json(data: object) -> None:
    """Machine-readable output: one JSON document on stdout, never wrapped or coloured by rich."""
    import json

    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def show_progress(as_json: bool = False) -> bool:
    """Progress bars are for people: not with --json, nor when stdout is a pipe or a file."""
    return not as_json and sys.stdout.isatty()


def _settings(config: Path | None) -> Settings:
    if config is not None:
        os.environ["DISTRIBUTOR_CONFIG"] = str(config)  # children (worker, beat) read the same file
    try:
        return load_settings(config)
    except ConfigError as exc:
        for problem in exc.problems:
            error(problem)
        raise typer.Exit(ExitCode.CONFIG) from None


def _context(config: Path | None):  # type: ignore[no-untyped-def]
    from distributor.context import get_context

    settings = _settings(config)
    ctx = get_context(settings)
    os.environ["DISTRIBUTOR_REDIS_URL"] = ctx.redis_url  # children share this Redis
    return ctx


def _logging(settings: Settings | None = None) -> None:
    """Text at INFO until the configuration is read, then its `[logging]` (see distributor.logs)."""
    from distributor import logs

    logs.configure(settings)


@app.command()
def check(
    config: ConfigOption = None, as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False
) -> None:
    """Validate the configuration; print every problem with its location (exit 3 when invalid)."""
    if as_json:
        try:
            settings = load_settings(config)
        except ConfigError as exc:
            emit_json({"ok": False, "problems": exc.problems})
            raise typer.Exit(ExitCode.CONFIG) from None
        emit_json({"ok": True, "config": settings.config_path, "sources": len(settings.sources),
                   "feeds": len(settings.feeds), "channels": len(settings.channels)})  # fmt: skip
        return
    settings = _settings(config)
    counts = _("{sources} sources, {feeds} feeds, {channels} channels").format(
        sources=len(settings.sources), feeds=len(settings.feeds), channels=len(settings.channels)
    )
    ok(f"{settings.config_path}: {counts}")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help=_("Where to write the files (default: here)."))] = Path(),
    force: Annotated[bool, typer.Option("--force", help=_("Overwrite existing files."))] = False,
) -> None:
    """Write a commented starter config (distributor.toml) and env.example (the secrets it may read)."""
    from distributor import cli_init

    try:
        written = cli_init.write_starter(directory, force=force)
    except cli_init.WouldOverwrite as exc:
        raise fail(_("{path} exists already; keep it, or pass --force to overwrite it").format(path=exc.path),
                   ExitCode.EXISTS) from None  # fmt: skip
    except OSError as exc:
        raise fail(f"{directory}: {exc}") from None
    for path in written:
        ok(_("wrote {path}").format(path=path))
    config_file = written[0]
    steps = [
        _("edit {path}: [site], the source, the channels").format(path=config_file),
        _("put the secrets it reads in the environment (see {path})").format(path=written[1]),
        f"distributor check --config {config_file}",
        f"distributor run --config {config_file}",
    ]
    console.print(_("Next steps:"))
    for number, step in enumerate(steps, 1):
        console.print(f"  {number}. {step}", soft_wrap=True)  # whole paths and commands, to copy


def _worker_argv(settings: Settings, beat: bool, queues: list[str] | None = None) -> list[str]:
    """Celery worker arguments; without `queues` it consumes every queue (see distributor.queues)."""
    argv = [
        "worker", "--loglevel", "INFO", "--pool", settings.worker.pool,
        "--concurrency", str(settings.worker.concurrency), *(["-Q", ",".join(queues)] if queues else []),
        # Worker-to-worker chatter we do not use; after a broker outage Celery's gossip fails to
        # restart (AttributeError) and mingle adds a second to every reconnection.
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    if beat:
        argv.append("--beat")
    return argv


@app.command()
def run(config: ConfigOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """Everything on one machine: (embedded) Redis, a worker, beat, and the HTTP server.

    The worker and beat run as supervised children: one that dies is restarted; one that keeps
    dying stops `run` with a non-zero status; every child stops when `run` stops, however it stops.
    """
    from distributor.supervise import Supervisor, spawn

    _logging()
    ctx = _context(config)
    _logging(ctx.settings)
    console.print(_("Redis: {url}").format(url=mask_url(ctx.redis_url)))
    env = os.environ.copy()
    supervisor = Supervisor(
        grace=ctx.settings.worker.stop_timeout, on_give_up=lambda: os.kill(os.getpid(), signal.SIGTERM)
    )
    children = {
        "worker": _celery_worker_command(ctx.settings, beat=False),
        "beat": [sys.executable, "-m", "distributor.cli", "beat"],
    }
    for name, argv in children.items():
        supervisor.add(name, functools.partial(spawn, argv, env))
    supervisor.run()
    # uvicorn re-raises SIGTERM after its own shutdown; turn it into SystemExit so that the
    # children and the embedded Redis below are stopped cleanly too.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    code: int | str | None = 0
    try:
        _serve(ctx, host, port)
    except SystemExit as exc:
        code = exc.code
    finally:
        supervisor.stop()
        from distributor.redis import embedded_servers

        for server in embedded_servers():
            server.stop()
    if supervisor.gave_up:
        msg = _("the {child} kept exiting; stopped everything (see the log above)")
        raise fail(msg.format(child=supervisor.gave_up))
    if code:
        raise typer.Exit(code if isinstance(code, int) else ExitCode.FAILED)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve(ctx, host: str | None, port: int | None) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    from distributor.web.app import create_app

    settings = ctx.settings
    bind_host = host or settings.server.host
    bind_port = settings.server.port if port is None else port
    serving = _("Serving on {url}  (feeds at /feeds/<name>.rss, dashboard at /dashboard)")
    console.print(serving.format(url=f"http://{bind_host}:{bind_port}"))
    uvicorn.run(
        create_app(ctx, bind_host=bind_host),
        host=bind_host,
        port=bind_port,
        loop="uvloop",
        http="httptools",
        log_level="info",
        log_config=None,  # uvicorn's loggers reach the root handler: one format (distributor.logs)
        access_log=settings.server.access_log,
    )


@app.command()
def serve(config: ConfigOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """Only the HTTP server (feeds, shares, API, dashboard)."""
    _logging()
    ctx = _context(config)
    _logging(ctx.settings)
    _serve(ctx, host, port)


@app.command()
def worker(
    config: ConfigOption = None,
    beat: Annotated[bool, typer.Option(help=_("Also run beat in this process."))] = False,
    queues: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help=_("Only these queues, comma-separated: distributor, deliver.CHANNEL (default: all).")),
    ] = None,
) -> None:
    """Only a Celery worker (run as many as you like, on many machines).

    The Celery worker runs as a supervised child: it rides out Redis outages (reconnecting with
    backoff), and if Celery itself falls over during one (it can, while closing a broken broker
    connection) it is started again. This command exits non-zero only when the worker keeps dying.
    """
    from distributor import queues as queue_names

    _logging()
    ctx = _context(config)
    _logging(ctx.settings)
    chosen = [name.strip() for name in (queues or "").split(",") if name.strip()] or None
    unknown = queue_names.unknown(ctx.settings, chosen or [])
    if unknown:
        known = ", ".join(queue_names.all_queues(ctx.settings))
        msg = _("--queues: unknown queue {queues} (known: {known})")
        raise fail(msg.format(queues=", ".join(map(repr, unknown)), known=known), ExitCode.USAGE)
    _wait_for_redis(ctx.redis_url)
    children = {"celery worker": _celery_worker_command(ctx.settings, beat, chosen)}
    raise typer.Exit(_supervise(children, ctx.settings.worker.stop_timeout))


def _celery_worker_command(settings: Settings, beat: bool, queues: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker", *_worker_argv(settings, beat, queues)]


def _supervise(children: dict[str, list[str]], grace: float) -> int:
    """Run `children` under a Supervisor until SIGTERM/SIGINT (exit 0) or one keeps dying (exit 1)."""
    import threading

    from distributor.supervise import Supervisor, spawn

    stop = threading.Event()
    supervisor = Supervisor(grace=grace, on_give_up=stop.set)
    for name, argv in children.items():
        supervisor.add(name, functools.partial(spawn, argv, os.environ.copy()))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    supervisor.run()
    stop.wait()
    supervisor.stop()
    if supervisor.gave_up:
        error(_("the {child} kept exiting; stopped (see the log above)").format(child=supervisor.gave_up))
        return ExitCode.FAILED
    return ExitCode.OK


@app.command()
def beat(config: ConfigOption = None) -> None:
    """Only the beat scheduler (a Redis lock keeps a single one active; others stand by)."""
    ctx = _context(config)
    _wait_for_redis(ctx.redis_url)
    from worker.celery_app import app as celery_app

    celery_app.start(["beat", "--loglevel", "INFO"])


def _wait_for_redis(url: str) -> None:
    """Start even while Redis is down: wait for it with backoff, one line per try."""
    import time

    import redis

    from distributor.redis import connect

    delay = 0.5
    while True:
        try:
            connect(url, socket_connect_timeout=2, socket_timeout=2).ping()
            return
        except redis.RedisError as exc:
            msg = _("Redis at {url} is unavailable ({error}); next try in {delay}s")
            warning(msg.format(url=mask_url(url), error=exc, delay=f"{delay:.0f}"))
            time.sleep(delay)
            delay = min(10.0, delay * 2)


@app.command()
def health(
    component: Annotated[str, typer.Argument(help=_("worker, beat or all."))] = "all",
    node: Annotated[Optional[str], typer.Option(help=_("Only this node (default: this host's)."))] = None,  # noqa: UP045
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Exit 0 when the part is alive (its heartbeat in Redis is fresh), 1 when not: for health checks."""
    import socket

    import redis

    from distributor import heartbeat

    if component not in ("worker", "beat", "all"):
        msg = _("component must be worker, beat or all (got {value})")
        raise fail(msg.format(value=repr(component[:40])), ExitCode.USAGE)
    ctx = _context(config)
    try:
        beats = heartbeat.read(ctx.redis, ctx.keys)
    except redis.RedisError as exc:
        msg = _("Redis at {url} is unavailable: {error}")
        if as_json:
            emit_json({"ok": False, "summary": msg.format(url=mask_url(ctx.redis_url), error=exc)})
            raise typer.Exit(ExitCode.UNAVAILABLE) from None
        raise fail(msg.format(url=mask_url(ctx.redis_url), error=exc), ExitCode.UNAVAILABLE) from None
    if component == "all":
        from distributor import queues

        verdict = heartbeat.judge(beats, queues=queues.all_queues(ctx.settings))
        healthy, summary = verdict.ok, f"worker {verdict.worker}, beat {verdict.beat}"
    else:
        wanted = node or (heartbeat.node_name("worker") if component == "worker" else socket.gethostname())
        mine = [b for b in beats if b.component == component and b.node == wanted]
        healthy = bool(mine) and mine[0].fresh()
        seen = _("{role}, {age}s ago").format(role=mine[0].role, age=f"{mine[0].age():.0f}") if mine else None
        summary = f"{component} {wanted}: " + (seen or _("never seen"))
    if as_json:
        emit_json({"ok": healthy, "summary": summary})
    else:
        (ok if healthy else error)(summary)
    raise typer.Exit(ExitCode.OK if healthy else ExitCode.FAILED)


@app.command()
def publish(
    path_or_url: Annotated[str, typer.Argument(help=_("An article file (Markdown, JSON, HTML) or a page URL."))],
    config: ConfigOption = None,
    announce: Annotated[
        bool, typer.Option(help=_("Post it to the channels (--no-announce: feeds only, no posts)."))
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Ingest one article file or page now, update the feeds, and post it to the channels."""
    from distributor import pipeline
    from distributor.inline import InlineDispatcher
    from distributor.reader import NotFound, read_one

    ctx = _context(config)
    try:
        draft = read_one(ctx, path_or_url)
        article = pipeline.to_article(ctx, draft, "cli")
    except (SourceError, ValueError, OSError) as exc:
        _audit(ctx, "publish", path_or_url, "refused", str(exc))
        code = ExitCode.NOT_FOUND if isinstance(exc, NotFound | FileNotFoundError) else ExitCode.FAILED
        raise fail(f"{mask_url(path_or_url)}: {exc}", code) from None
    dispatch = InlineDispatcher(ctx)
    change, feeds = pipeline.ingest(ctx, article, dispatch, announce=announce)
    if feeds:
        dispatch.rebuild(sorted(feeds))
    if as_json:
        emit_json({"id": article.id, "change": change, "title": article.title, "url": article.url, "channels": [
            {"channel": channel, "state": result.state, "detail": result.detail or None}
            for _id, channel, result in dispatch.results
        ]})  # fmt: skip
    else:
        console.print(f"{article.id} {change}: {article.title}")
        for _id, channel, result in dispatch.results:
            console.print(f"  {channel}: {result.state} {result.detail}")
    report = "; ".join(f"{channel}: {result.state} {result.detail}".strip() for _i, channel, result in dispatch.results)
    _audit(ctx, "publish", article.id, change, f"{path_or_url}" + (f"; {report}" if report else ""))


@feeds_app.command("build")
def feeds_build(
    out: Annotated[Path, typer.Option(help=_("Folder to write the feed files to."))],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON (the files written)."))] = False,
) -> None:
    """Render every feed in every format into a folder."""
    from rich.progress import Progress

    from distributor import rebuild
    from distributor.feeds.build import FORMATS

    ctx = _context(config)
    rebuild.register_configured_feeds(ctx)
    names = sorted(ctx.store.feed_meta())
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"--out {out}: {exc}", ExitCode.USAGE) from None
    written: list[dict[str, str]] = []
    with Progress(console=Console(stderr=True), disable=not show_progress(as_json), transient=True) as progress:
        task = progress.add_task(_("building {count} feeds").format(count=len(names)), total=len(names))
        for name in names:
            rebuild.rebuild_feeds(ctx, [name])
            for fmt, (_type, ext) in FORMATS.items():
                body = ctx.store.load_render(name, fmt).get(b"body")
                if body is not None:
                    rebuild.write_public(out / f"{name}.{ext}", body)
                    written.append({"feed": name, "format": fmt, "path": str(out / f"{name}.{ext}")})
            progress.advance(task)
    if as_json:
        emit_json({"out": str(out), "files": written})
        return
    for item in written:
        console.print(_("wrote {path}").format(path=item["path"]), soft_wrap=True)


@feeds_app.command("links")
def feeds_links(
    config: ConfigOption = None, as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False
) -> None:
    """Print the <link rel="alternate"> tags to put in the portal's pages."""
    from html import escape

    from distributor import rebuild
    from distributor.feeds.build import FORMATS, feed_url

    ctx = _context(config)
    rebuild.register_configured_feeds(ctx)
    links = []
    for name, meta in sorted(ctx.store.feed_meta().items()):
        spec = rebuild.spec_for(ctx, name, meta)
        for fmt, (media_type, _ext) in FORMATS.items():
            links.append({"feed": name, "format": fmt, "type": media_type.split(";")[0], "title": spec.title,
                          "href": feed_url(spec, fmt)})  # fmt: skip
    if as_json:
        emit_json({"links": links})
        return
    for link in links:
        title, href = escape(link["title"]), escape(link["href"])
        print(f'<link rel="alternate" type="{link["type"]}" title="{title}" href="{href}">')


@app.command()
def preview(
    article: Annotated[str, typer.Argument(help=_("An article id, its URL, or a file."))],
    channel: Annotated[str | None, typer.Option(help=_("Only this channel."))] = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """What each channel would post for ARTICLE (an id, a URL or a file), with its length and limit."""
    from distributor.reader import NotFound, find_article

    ctx = _context(config)
    try:
        found = find_article(ctx, article)
    except (SourceError, ValueError, OSError) as exc:
        code = ExitCode.NOT_FOUND if isinstance(exc, NotFound | FileNotFoundError) else ExitCode.FAILED
        raise fail(f"{article}: {exc}", code) from None
    names = [channel] if channel else [c.name for c in ctx.settings.channels]
    posts = []
    for name in names:
        try:
            adapter = ctx.channel(name)
        except KeyError:
            raise fail(_("no channel named {name}").format(name=repr(name)), ExitCode.NOT_FOUND) from None
        post = adapter.render(found)
        posts.append({"channel": name, "type": adapter.kind, "length": post.length, "limit": post.limit,
                      "fits": post.length <= post.limit, "text": post.text})  # fmt: skip
        if not as_json:
            fits = Text(_("fits"), style="green") if post.length <= post.limit else Text(_("too long"), style="red")
            console.rule(Text(f"{name} ({adapter.kind}): {post.length}/{post.limit} ") + fits)
            console.print(post.text, markup=False, highlight=False, soft_wrap=True)  # verbatim
    if as_json:
        emit_json({"article_id": found.id, "title": found.title, "posts": posts})


@deliveries_app.callback()
def deliveries(
    ctx_: typer.Context,
    state: Annotated[str | None, typer.Option(help=_("Only this state."))] = None,
    limit: Annotated[int, typer.Option(help=_("How many to list, newest first."))] = 50,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON (one object per delivery)."))] = False,
) -> None:
    """List recent deliveries (or use: retry, cancel)."""
    if ctx_.invoked_subcommand is not None:
        return
    from distributor.ledger import STATES

    if state is not None and state not in STATES:
        message = _("--state {value} is not a delivery state (one of: {known})")
        raise fail(message.format(value=repr(state), known=", ".join(STATES)), ExitCode.USAGE)
    ctx = _context(config)
    if as_json:
        rows = [
            {"article_id": d.article_id, "channel": d.channel, "state": d.state, "attempts": d.attempts,
             "post_id": d.post_id or None, "post_url": d.post_url or None, "error": (d.error or d.edit_error) or None,
             "code": d.code or None, "edit_due": bool(d.edit_pending), "updated": d.updated or None}
            for d in ctx.ledger.recent(limit, state)
        ]  # fmt: skip
        emit_json(rows)
        return
    table = Table()
    table.add_column(_("article"), no_wrap=True, min_width=16)  # ids are copied into retry/cancel
    table.add_column(_("channel"), no_wrap=True)
    for heading in (_("state"), _("attempts"), _("post"), _("message"), _("updated")):
        table.add_column(heading)
    for d in ctx.ledger.recent(limit, state):
        when = datetime.fromtimestamp(d.updated).strftime("%Y-%m-%d %H:%M:%S") if d.updated else ""
        message = d.error or d.edit_error
        if d.edit_pending:  # corrections: an edit of the post is due (docs/corrections.md)
            message = f"{_('edit due')}; {message}" if message else _("edit due")
        table.add_row(d.article_id, d.channel, d.state, str(d.attempts), d.post_url or d.post_id, message, when)
    console.print(table)


@deliveries_app.command("retry")
def deliveries_retry(article_id: ArticleIdArg, channel: ChannelArg, config: ConfigOption = None) -> None:
    """Put a failed, unknown or cancelled delivery back in the queue."""
    from distributor import audit, operations

    ctx = _context(config)
    target = f"{article_id} -> {channel}"
    result = operations.retry_delivery(ctx, audit.cli_actor(), article_id, channel, _queue_delivery)
    if not result.done:
        found = ctx.ledger.get(article_id, channel)
        shown = _("state {state}").format(state=found.state) if found else _("no such delivery")
        msg = _("no failed/unknown/cancelled delivery {target} ({why})").format(target=target, why=shown)
        raise fail(msg, ExitCode.FAILED if found else ExitCode.NOT_FOUND)
    if result.outcome == AWAITING.replace("_", " "):
        msg = _("{target} awaits approval again: {command}")
        console.print(msg.format(target=target, command=f"distributor approve {article_id} --channel {channel}"))
        return
    console.print(_("queued {target}").format(target=target))


@deliveries_app.command("cancel")
def deliveries_cancel(article_id: ArticleIdArg, channel: ChannelArg, config: ConfigOption = None) -> None:
    """Cancel a pending, failed or unknown delivery (it will never be posted)."""
    from distributor import audit, operations

    ctx = _context(config)
    target = f"{article_id} -> {channel}"
    result = operations.cancel_delivery(ctx, audit.cli_actor(), article_id, channel)
    if not result.done:
        found = ctx.ledger.get(article_id, channel)
        shown = _("state {state}").format(state=found.state) if found else _("no such delivery")
        msg = _("nothing to cancel for {target} ({why})").format(target=target, why=shown)
        raise fail(msg, ExitCode.FAILED if found else ExitCode.NOT_FOUND)
    console.print(_("cancelled {target}").format(target=target))


def _queue_delivery(article_id: str, channel: str) -> None:
    from worker.tasks import dispatcher

    dispatcher.deliver(article_id, channel)


def _audit(ctx, action: str, target: str, outcome: str, detail: str = "") -> None:  # type: ignore[no-untyped-def]
    """Record a command-line operator action (`distributor audit` lists them)."""
    from distributor import audit

    audit.record(ctx, audit.cli_actor(), action, target, outcome, detail)


JsonOption = Annotated[bool, typer.Option("--json", help=_("Print JSON."))]
ChannelOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--channel", help=_("Only this channel (default: every channel where the article awaits approval).")),
]


def _decide(
    decision: str, article_id: str, channel: str | None, reason: str, config: Path | None, as_json: bool
) -> None:
    from distributor import approval
    from distributor.inline import InlineDispatcher

    ctx = _context(config)
    target = f"{article_id} -> {channel}" if channel else article_id
    dispatch = InlineDispatcher(ctx)
    try:
        outcomes = approval.decide(ctx, decision, article_id, channel, dispatch, reason)  # type: ignore[arg-type]
    except approval.NothingToDecide as exc:
        _audit(ctx, decision, target, "refused", str(exc))
        if as_json:
            emit_json({"article_id": article_id, "action": decision, "error": str(exc)})  # scripts: English
        else:
            error(said(exc))
        raise typer.Exit(ExitCode.NOT_FOUND) from None
    sent = {name: result for _id, name, result in dispatch.results}
    done = any(o.done for o in outcomes)
    report = approval.summary(outcomes)
    _audit(ctx, decision, target, ("approved" if decision == "approve" else "rejected") if done else "refused", report)
    if as_json:
        rows = [o.as_dict() | ({"delivery": sent[o.channel].state} if o.channel in sent else {}) for o in outcomes]
        emit_json({"article_id": article_id, "action": decision, "channels": rows})
    else:
        for o in outcomes:
            after = f" ({sent[o.channel].state} {sent[o.channel].detail})".rstrip() if o.channel in sent else ""
            (ok if o.done else error)(f"{o.channel}: {o.message}{after}")
    if not done:
        raise typer.Exit(ExitCode.FAILED)


@app.command()
def approve(
    article_id: ArticleIdArg, channel: ChannelOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Post an article held for approval (channels with approval = true), now."""
    _decide("approve", article_id, channel, "", config, as_json)


@app.command()
def reject(
    article_id: ArticleIdArg,
    channel: ChannelOption = None,
    reason: Annotated[str, typer.Option(help=_("Why (kept in the ledger and the audit log)."))] = "",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Never post an article held for approval (a later approve is refused)."""
    _decide("reject", article_id, channel, reason, config, as_json)


@app.command("audit")
def audit_log(
    since: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help=_("Only actions since then: a duration ('7d', '12h') or an ISO date/time (UTC).")),
    ] = None,
    limit: Annotated[int, typer.Option(help=_("How many to list, newest first."))] = 100,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Operator actions (approve, reject, retract, retry, cancel, publish, push): who, when, what, outcome."""
    from distributor import audit

    try:
        start = audit.since_time(since)
    except ValueError as exc:
        raise fail(f"--since: {said(exc)}", ExitCode.USAGE) from None
    ctx = _context(config)
    entries = audit.read(ctx, start, limit)
    if as_json:
        emit_json({"entries": [e.as_dict() for e in entries]})
        return
    table = Table(_("when (UTC)"), _("who"), _("action"), _("target"), _("outcome"), _("detail"))
    for e in entries:
        table.add_row(e.at, e.actor, e.action, e.target, e.outcome, e.detail)
    console.print(table)


@app.command()
def retract(
    article: Annotated[str, typer.Argument(help=_("The article's id or URL."))],
    channel: Annotated[str | None, typer.Option(help=_("Only this channel (the feeds keep the article)."))] = None,
    reason: Annotated[str, typer.Option(help=_("Why, kept in each delivery's history."))] = "",
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("JSON output."))] = False,
) -> None:
    """Take an article back: delete its posts where the platform allows it, stop what was not sent,
    remove it from every feed; report per channel (docs/corrections.md)."""
    from distributor import corrections
    from distributor.inline import InlineDispatcher

    ctx = _context(config)
    target = f"{article} -> {channel}" if channel else article
    try:
        article_id = corrections.article_reference(ctx, article, channel)
    except ValueError as exc:
        _audit(ctx, "retract", target, "refused", str(exc))
        raise fail(f"{article}: {said(exc)}", ExitCode.NOT_FOUND) from None
    report = corrections.retract(ctx, article_id, InlineDispatcher(ctx), channel=channel, reason=reason)
    _audit(ctx, "retract", target, "retracted", "; ".join(f"{o.channel}: {o.outcome}" for o in report))
    if as_json:
        emit_json(corrections.report_json(article_id, report))
        return
    table = Table(title=_("retraction of {article}").format(article=article_id))
    for heading in (_("channel"), _("outcome"), _("detail")):
        table.add_column(heading)
    for row in report:
        table.add_row(row.channel, row.outcome.replace("_", " "), row.detail or row.post_url)
    console.print(table)


@recovery_app.command("status")
def recovery_status(
    config: ConfigOption = None, as_json: Annotated[bool, typer.Option("--json", help=_("JSON output."))] = False
) -> None:
    """Whether Redis was found without the service's state (exit code 1 until acknowledged)."""
    from distributor import recovery

    lost = recovery.status(_context(config))
    if as_json:
        emit_json({"state_lost": lost})
    elif lost is None:
        ok(_("Redis holds the service's state"))
    else:
        message = _(
            "Redis lost its state ({reason}), noticed {detected_at}. Restored from the journal: "
            "{sources} sources, {articles} articles, {deliveries} deliveries; articles "
            "published since were posted, none already posted was posted again. Check the dashboard and "
            "`distributor deliveries --state unknown`, then `distributor recovery ack`."
        )
        error(message.format(**{k: lost[k] for k in ("reason", "detected_at", "sources", "articles", "deliveries")}))
    if lost is not None:
        raise typer.Exit(ExitCode.FAILED)


@recovery_app.command("ack")
def recovery_ack(config: ConfigOption = None) -> None:
    """Acknowledge a loss of state: /healthz and the console stop reporting it."""
    from distributor import recovery

    ctx = _context(config)
    if not recovery.acknowledge(ctx):
        _audit(ctx, "recovery-ack", "state-lost", "refused", "no loss of state to acknowledge")
        raise fail(_("no loss of state to acknowledge"))
    _audit(ctx, "recovery-ack", "state-lost", "acknowledged")
    ok(_("acknowledged"))


@shares_app.command("top")
def shares_top(
    period: Annotated[str, typer.Option(help=_("day, week, month or all."))] = "week",
    limit: Annotated[int, typer.Option(help=_("How many articles to list."))] = 10,
    by: Annotated[str, typer.Option(help=_("shares (readers'), clicks (on our posts) or engagement."))] = "shares",
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
    config: ConfigOption = None,
) -> None:
    """The most shared articles of a period (day, week, month, all), or by clicks on our posts or engagement."""
    from distributor import clicks, engagement

    ctx = _context(config)
    try:
        if by == "clicks":
            rows = clicks.top_clicks(ctx, period, limit)
        elif by == "engagement":
            rows = engagement.top_engaged(ctx, period, limit)
        elif by == "shares":
            rows = ctx.shares.top(period, limit)
        else:
            raise ValueError(_("--by must be shares, clicks or engagement, got {value}").format(value=repr(by)))
    except ValueError as exc:
        raise fail(said(exc), ExitCode.USAGE) from None
    articles = {a.id: a for a in ctx.store.get_many([r[0] for r in rows])}
    if as_json:
        listed = [
            {"id": aid, by: count, "title": articles[aid].title if aid in articles else None,
             "url": articles[aid].url if aid in articles else None}
            for aid, count in rows
        ]  # fmt: skip
        emit_json({"period": period, "by": by, "articles": listed})
        return
    table = Table(by, _("article"), _("title"))
    for article_id, count in rows:
        table.add_row(str(count), article_id, articles[article_id].title if article_id in articles else _("(removed)"))
    console.print(table)


@shares_app.command("export")
def shares_export(
    fmt: Annotated[str, typer.Option("--format", help=_("csv or json."))] = "csv",
    period: Annotated[str, typer.Option(help=_("day, week, month or all."))] = "month",
    out: Annotated[Path | None, typer.Option("--out", help=_("Write to this file (default: standard output)."))] = None,
    config: ConfigOption = None,
) -> None:
    """Every article shared in a period with its counts (period, total, unique, per network) and what our
    posts of it achieved (clicks and engagement, per channel)."""
    from rich.progress import Progress

    from distributor import share_export

    if fmt not in ("csv", "json"):
        raise fail(_("--format must be csv or json, got {value}").format(value=repr(fmt)), ExitCode.USAGE)
    ctx = _context(config)
    try:
        planned = share_export.plan(ctx, period)  # once: the bar's total and the rows' order
    except ValueError as exc:
        raise fail(said(exc), ExitCode.USAGE) from None
    total = len(planned)
    try:
        stream = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    except OSError as exc:
        raise fail(f"--out {out}: {exc}", ExitCode.USAGE) from None
    # A bar only where there is something to wait for, and only for a person watching (the data
    # itself may be going to a pipe).
    show = total >= share_export.PAGE and show_progress()
    try:
        with Progress(console=Console(stderr=True), disable=not show, transient=True) as progress:
            task = progress.add_task(_("exporting {total} articles").format(total=total), total=total)
            rows = share_export.rows(ctx, period, planned)
            share_export.write(stream, fmt, period, rows, lambda: progress.advance(task), share_export.fields(ctx))
    finally:
        if out:
            stream.close()
    if out:
        ok(_("{total} articles written to {path}").format(total=total, path=out))


@sources_app.command("test")
def sources_test(
    name: Annotated[str, typer.Argument(help=_("The source's name in the config."))],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Fetch a source once; print what was found and what would change. Writes nothing."""
    from distributor import pipeline

    ctx = _context(config)
    try:
        source = ctx.source(name)
    except KeyError:
        raise fail(_("no source named {name}").format(name=repr(name)), ExitCode.NOT_FOUND) from None
    try:
        result = source.poll({})
    except SourceError as exc:
        if as_json:
            emit_json({"source": name, "ok": False, "error": str(exc)})
            raise typer.Exit(ExitCode.FAILED) from None
        raise fail(str(exc)) from None
    found = []
    for draft in result.drafts:
        try:
            article = pipeline.to_article(ctx, draft, name)
        except ValueError as exc:
            found.append({"would": "skip", "published": None, "title": None, "url": draft.url, "reason": str(exc)})
            continue
        stored = ctx.store.get(article.id)
        action = (
            "add" if stored is None else ("unchanged" if stored.content_hash() == article.content_hash() else "update")
        )
        found.append({"would": action, "published": article.published.isoformat(), "title": article.title,
                      "url": article.url, "id": article.id})  # fmt: skip
    if as_json:
        emit_json({"source": name, "ok": True, "articles": found, "problems": [str(p) for p in result.errors]})
        return
    labels = {"add": _("add"), "update": _("update"), "unchanged": _("unchanged"), "skip": _("skip")}
    table = Table(_("would"), _("published"), _("title"), _("url"))
    for item in found:
        title = item["title"] if item["would"] != "skip" else item["reason"]
        table.add_row(labels[str(item["would"])], item["published"] or "", title, item["url"] or "")
    console.print(table)
    for problem in result.errors:
        warning(str(problem))


@channels_app.callback()
def channels(
    ctx_: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=_("JSON output."))] = False,
    config: ConfigOption = None,
) -> None:
    """Each channel's health: circuit breaker, deliveries in flight, next post time, latest outcomes."""
    if ctx_.invoked_subcommand is not None:
        return
    from distributor import channel_health

    ctx = _context(config)
    entries = channel_health.report(ctx)
    if as_json:
        emit_json({"channels": entries})
        return

    def when(moment: float | None) -> str:
        return datetime.fromtimestamp(moment, ctx.tz).strftime("%Y-%m-%d %H:%M:%S") if moment else ""

    table = Table()
    headings = ("channel", "type", "enabled", "circuit", "failures", "in flight", "next post", "today")
    for heading, label in zip(headings, (_("channel"), _("type"), _("enabled"), _("circuit"), _("failures"),
                                         _("in flight"), _("next post"), _("today")), strict=True):  # fmt: skip
        table.add_column(label, no_wrap=heading in ("channel", "circuit"))
    table.add_column(_("last sent"))
    table.add_column(_("last error"))
    for e in entries:
        circuit = e["breaker"]
        if e["breaker"] == "open":
            circuit += " " + _("until {moment}").format(moment=when(e["open_until"]))
        if e["reason"] and e["breaker"] != "closed":
            circuit += f": {e['reason']}"
        error_text = f"{when(e['last_error']['at'])} {e['last_error']['message']}" if e["last_error"] else ""
        table.add_row(
            *(e["name"], e["type"], _("yes") if e["enabled"] else _("no"), circuit, str(e["failures_in_a_row"])),
            *(f"{e['in_flight']}/{e['max_in_flight']}", when(e["next_post"]), str(e["posts_today"])),
            *(when(e["last_sent"]), error_text),
        )
    console.print(table)


@channels_app.command("test")
def channels_test(
    name: Annotated[str, typer.Argument(help=_("The channel's name in the config."))],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Check a channel's credentials with a read-only call; posts nothing. A pass closes a paused
    or open circuit (the operator fixed the credentials)."""
    from distributor import audit, operations

    ctx = _context(config)
    if not operations.known_channel(ctx, name):
        raise fail(_("no channel named {name}").format(name=repr(name)), ExitCode.NOT_FOUND)
    result, resumed = operations.test_channel(ctx, audit.cli_actor(), name, _queue_delivery)
    if not result.done:
        if as_json:
            emit_json({"channel": name, "ok": False, "error": result.detail})
            raise typer.Exit(ExitCode.FAILED)
        raise fail(f"{name}: {result.detail}")
    if as_json:
        emit_json({"channel": name, "ok": True, "detail": result.detail, "resumed": resumed is not None})
        return
    ok(f"{name}: {result.detail}")
    if resumed is not None:
        ok(_("{name}: circuit closed; its waiting deliveries are queued again").format(name=name))


@channels_app.command("pause")
def channels_pause(
    name: Annotated[str, typer.Argument(help=_("The channel's name in the config."))], config: ConfigOption = None
) -> None:
    """Hold a channel's deliveries (nothing is lost) until `distributor channels resume NAME`."""
    from distributor import audit, operations

    ctx = _context(config)
    result = operations.pause_channel(ctx, audit.cli_actor(), name)
    if not result.done:
        raise fail(_("no channel named {name}").format(name=repr(name)), ExitCode.NOT_FOUND)
    if result.outcome == "paused":
        ok(_("{name}: paused; its deliveries wait until the channel is resumed").format(name=name))
    else:
        ok(_("{name}: already paused").format(name=name))


@channels_app.command("resume")
def channels_resume(
    name: Annotated[str, typer.Argument(help=_("The channel's name in the config."))], config: ConfigOption = None
) -> None:
    """Close a channel's circuit (paused after an authentication error or by an operator, or open
    after failures): its waiting deliveries go out again."""
    from distributor import audit, operations

    ctx = _context(config)
    result = operations.resume_channel(ctx, audit.cli_actor(), name, _queue_delivery)
    if not result.done:
        raise fail(_("no channel named {name}").format(name=repr(name)), ExitCode.NOT_FOUND)
    if result.outcome == "unchanged":
        ok(_("{name}: circuit already closed").format(name=name))
        return
    ok(_("{name}: circuit closed; {count} waiting deliveries queued again").format(name=name, count=result.count))


@channels_app.command("backfill")
def channels_backfill(
    name: Annotated[str, typer.Argument(help=_("The channel's name in the config."))],
    since: Annotated[str, typer.Option(help=_("How far back: articles published within this (e.g. 7d, 12h)."))] = "7d",
    limit: Annotated[int, typer.Option(min=1, help=_("At most this many articles (the newest)."))] = 100,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=_("List what would be posted; post nothing."))] = False,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Post already published articles to a channel (one added later, or one that was off), in
    publish order, through its usual delivery: approval, spacing and exactly once still hold, and an
    article the channel already has is left alone."""
    from rich.progress import Progress

    from distributor import audit, operations
    from distributor.settings import parse_duration

    ctx = _context(config)
    if not operations.known_channel(ctx, name):
        raise fail(_("no channel named {name}").format(name=repr(name)), ExitCode.NOT_FOUND)
    if not ctx.settings.channel(name).enabled:
        raise fail(_("{name} is disabled: enable it in the config first").format(name=name), ExitCode.USAGE)
    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise fail(f"--since {since!r}: {exc}", ExitCode.USAGE) from None
    articles = operations.backfill_candidates(ctx, name, seconds, limit)
    if dry_run:
        if as_json:
            emit_json([{"id": a.id, "title": a.title, "published": a.published.isoformat()} for a in articles])
            return
        for article in articles:
            console.print(f"{article.id}  {article.published:%Y-%m-%d %H:%M}  {article.title}", highlight=False)
        ok(_("{count} articles would be posted to {name}").format(count=len(articles), name=name))
        return
    with Progress(console=Console(stderr=True), disable=not show_progress(as_json), transient=True) as progress:
        task = progress.add_task(_("queueing {count} articles").format(count=len(articles)), total=len(articles))
        report = operations.backfill_channel(
            ctx, audit.cli_actor(), name, articles, _queue_delivery, lambda: progress.advance(task)
        )
    if as_json:
        found = [{"id": a.id, "title": a.title, "result": result} for a, result in report.results]
        emit_json({"channel": name, "articles": found})
        return
    queued, held, known = (report.count(outcome) for outcome in ("queued", "awaiting approval", "known"))
    ok(_("{name}: {queued} queued, {held} awaiting approval, {known} already delivered or under way").format(
        name=name, queued=queued, held=held, known=known
    ))  # fmt: skip


def _redispatch_waiting(ctx, channel: str) -> int:  # type: ignore[no-untyped-def]
    """Kept for callers of the old name: see distributor.operations.redispatch_waiting."""
    from distributor import operations

    return operations.redispatch_waiting(ctx, channel, _queue_delivery)


def _examples() -> None:
    from distributor import cli_click
    from distributor.cli_examples import attach
    from distributor.i18n import cli_locale

    attach(app)
    cli_click.install(cli_locale())


_examples()  # after every command is registered: each --help ends with an example


def main() -> None:
    """The CLI; an expected Redis outage is one line (not a traceback with locals) and status 4."""
    import redis

    from distributor.urls import mask_urls

    try:
        app()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        url = os.environ.get("DISTRIBUTOR_REDIS_URL", "")  # set by _context for the command's Redis
        where = _("Redis at {url}").format(url=mask_url(url)) if url else "Redis"
        msg = _("{where} is unavailable ({error}); start it or check [redis] url, then try again")
        error(msg.format(where=where, error=mask_urls(str(exc))))
        raise SystemExit(ExitCode.UNAVAILABLE) from None


if __name__ == "__main__":
    main()
