"""The `distributor` command: run everything, or one part, and operate it."""

from __future__ import annotations

import functools
import logging
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

from distributor.errors import ConfigError, SourceError
from distributor.ledger import AWAITING
from distributor.settings import Settings, load_settings
from distributor.urls import mask_url

app = typer.Typer(help="RSS and social distribution for news publishers.", no_args_is_help=True, rich_markup_mode=None)
feeds_app = typer.Typer(help="Feed files and links.", no_args_is_help=True)
deliveries_app = typer.Typer(help="List, retry or cancel deliveries.", invoke_without_command=True)
shares_app = typer.Typer(help="Share counts.", no_args_is_help=True)
sources_app = typer.Typer(help="Source tools.", no_args_is_help=True)
channels_app = typer.Typer(help="Channel health (or use: test, resume).", invoke_without_command=True)
recovery_app = typer.Typer(help="Redis lost the service's state: see it, acknowledge it.", no_args_is_help=True)
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
    typer.Option("--config", "-c", help="Config file (default: $DISTRIBUTOR_CONFIG or config/distributor.toml)."),
]
HostOption = Annotated[Optional[str], typer.Option(help="Listen address (default: [server] host).")]  # noqa: UP045
PortOption = Annotated[Optional[int], typer.Option(help="Listen port (default: [server] port).")]  # noqa: UP045
ArticleIdArg = Annotated[str, typer.Argument(help="The article's id (see `distributor deliveries`).")]
ChannelArg = Annotated[str, typer.Argument(help="The channel's name in the config.")]


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
    console.print(f"Redis: {mask_url(ctx.redis_url)}")
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
        error(f"the {supervisor.gave_up} kept exiting; stopped everything (see the log above)")
        raise typer.Exit(1)
    if code:
        raise typer.Exit(code if isinstance(code, int) else 1)


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
        create_app(ctx, bind_host=bind_host),
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
    config: ConfigOption = None,
    beat: Annotated[bool, typer.Option(help="Also run beat in this process.")] = False,
    queues: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Only these queues, comma-separated: distributor, deliver.CHANNEL (default: all)."),
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
    chosen = [name.strip() for name in (queues or "").split(",") if name.strip()] or None
    unknown = queue_names.unknown(ctx.settings, chosen or [])
    if unknown:
        known = ", ".join(queue_names.all_queues(ctx.settings))
        error(f"--queues: unknown queue {', '.join(map(repr, unknown))} (known: {known})")
        raise typer.Exit(2)
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
        error(f"the {supervisor.gave_up} kept exiting; stopped (see the log above)")
        return 1
    return 0


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
            warning(f"Redis at {mask_url(url)} is unavailable ({exc}); next try in {delay:.0f}s")
            time.sleep(delay)
            delay = min(10.0, delay * 2)


@app.command()
def health(
    component: Annotated[str, typer.Argument(help="worker, beat or all.")] = "all",
    node: Annotated[Optional[str], typer.Option(help="Only this node (default: this host's).")] = None,  # noqa: UP045
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Exit 0 when the part is alive (its heartbeat in Redis is fresh), 1 when not: for health checks."""
    import json
    import socket

    import redis

    from distributor import heartbeat

    if component not in ("worker", "beat", "all"):
        error(f"component must be worker, beat or all (got {component[:40]!r})")
        raise typer.Exit(2)
    ctx = _context(config)
    try:
        beats = heartbeat.read(ctx.redis, ctx.keys)
    except redis.RedisError as exc:
        error(f"Redis at {mask_url(ctx.redis_url)} is unavailable: {exc}")
        raise typer.Exit(1) from None
    if component == "all":
        from distributor import queues

        verdict = heartbeat.judge(beats, queues=queues.all_queues(ctx.settings))
        healthy, summary = verdict.ok, f"worker {verdict.worker}, beat {verdict.beat}"
    else:
        wanted = node or (heartbeat.node_name("worker") if component == "worker" else socket.gethostname())
        mine = [b for b in beats if b.component == component and b.node == wanted]
        healthy = bool(mine) and mine[0].fresh()
        summary = f"{component} {wanted}: " + (f"{mine[0].role}, {mine[0].age():.0f}s ago" if mine else "never seen")
    if as_json:
        console.print(json.dumps({"ok": healthy, "summary": summary}))
    else:
        (ok if healthy else error)(summary)
    raise typer.Exit(0 if healthy else 1)


@app.command()
def publish(
    path_or_url: Annotated[str, typer.Argument(help="An article file (Markdown, JSON, HTML) or a page URL.")],
    config: ConfigOption = None,
    announce: Annotated[
        bool, typer.Option(help="Post it to the channels (--no-announce: feeds only, no posts).")
    ] = True,
) -> None:
    """Ingest one article file or page now, update the feeds, and post it to the channels."""
    from distributor import pipeline
    from distributor.inline import InlineDispatcher
    from distributor.reader import read_one

    ctx = _context(config)
    try:
        draft = read_one(ctx, path_or_url)
        article = pipeline.to_article(ctx, draft, "cli")
    except (SourceError, ValueError, OSError) as exc:
        error(f"{mask_url(path_or_url)}: {exc}")
        _audit(ctx, "publish", path_or_url, "refused", str(exc))
        raise typer.Exit(1) from None
    dispatch = InlineDispatcher(ctx)
    change, feeds = pipeline.ingest(ctx, article, dispatch, announce=announce)
    if feeds:
        dispatch.rebuild(sorted(feeds))
    console.print(f"{article.id} {change}: {article.title}")
    for _, channel, result in dispatch.results:
        console.print(f"  {channel}: {result.state} {result.detail}")
    report = "; ".join(f"{channel}: {result.state} {result.detail}".strip() for _, channel, result in dispatch.results)
    _audit(ctx, "publish", article.id, change, f"{path_or_url}" + (f"; {report}" if report else ""))


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
    article: Annotated[str, typer.Argument(help="An article id, its URL, or a file.")],
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
    limit: Annotated[int, typer.Option(help="How many to list, newest first.")] = 50,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per delivery).")] = False,
) -> None:
    """List recent deliveries (or use: retry, cancel)."""
    if ctx_.invoked_subcommand is not None:
        return
    ctx = _context(config)
    if as_json:
        rows = [
            {"article_id": d.article_id, "channel": d.channel, "state": d.state, "attempts": d.attempts,
             "post_id": d.post_id or None, "post_url": d.post_url or None, "error": (d.error or d.edit_error) or None,
             "code": d.code or None, "edit_due": bool(d.edit_pending), "updated": d.updated or None}
            for d in ctx.ledger.recent(limit, state)
        ]  # fmt: skip
        console.print_json(data=rows)
        return
    table = Table()
    table.add_column("article", no_wrap=True, min_width=16)  # ids are copied into retry/cancel
    table.add_column("channel", no_wrap=True)
    for heading in ("state", "attempts", "post", "message", "updated"):
        table.add_column(heading)
    for d in ctx.ledger.recent(limit, state):
        when = datetime.fromtimestamp(d.updated).strftime("%Y-%m-%d %H:%M:%S") if d.updated else ""
        message = d.error or d.edit_error
        if d.edit_pending:  # corrections: an edit of the post is due (docs/corrections.md)
            message = f"edit due; {message}" if message else "edit due"
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
        error(f"no failed/unknown/cancelled delivery {target} ({result.detail})")
        raise typer.Exit(1)
    if result.outcome == AWAITING.replace("_", " "):
        console.print(f"{target} awaits approval again: distributor approve {article_id} --channel {channel}")
        return
    console.print(f"queued {target}")


@deliveries_app.command("cancel")
def deliveries_cancel(article_id: ArticleIdArg, channel: ChannelArg, config: ConfigOption = None) -> None:
    """Cancel a pending, failed or unknown delivery (it will never be posted)."""
    from distributor import audit, operations

    ctx = _context(config)
    target = f"{article_id} -> {channel}"
    result = operations.cancel_delivery(ctx, audit.cli_actor(), article_id, channel)
    if not result.done:
        error(f"nothing to cancel for {target} ({result.detail})")
        raise typer.Exit(1)
    console.print(f"cancelled {target}")


def _queue_delivery(article_id: str, channel: str) -> None:
    from worker.tasks import dispatcher

    dispatcher.deliver(article_id, channel)


def _audit(ctx, action: str, target: str, outcome: str, detail: str = "") -> None:  # type: ignore[no-untyped-def]
    """Record a command-line operator action (`distributor audit` lists them)."""
    from distributor import audit

    audit.record(ctx, audit.cli_actor(), action, target, outcome, detail)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ChannelOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--channel", help="Only this channel (default: every channel where the article awaits approval)."),
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
            console.print_json(data={"article_id": article_id, "action": decision, "error": str(exc)})
        else:
            error(str(exc))
        raise typer.Exit(1) from None
    sent = {name: result for _, name, result in dispatch.results}
    done = any(o.done for o in outcomes)
    report = approval.summary(outcomes)
    _audit(ctx, decision, target, ("approved" if decision == "approve" else "rejected") if done else "refused", report)
    if as_json:
        rows = [o.as_dict() | ({"delivery": sent[o.channel].state} if o.channel in sent else {}) for o in outcomes]
        console.print_json(data={"article_id": article_id, "action": decision, "channels": rows})
    else:
        for o in outcomes:
            after = f" ({sent[o.channel].state} {sent[o.channel].detail})".rstrip() if o.channel in sent else ""
            (ok if o.done else error)(f"{o.channel}: {o.message}{after}")
    if not done:
        raise typer.Exit(1)


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
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger and the audit log).")] = "",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Never post an article held for approval (a later approve is refused)."""
    _decide("reject", article_id, channel, reason, config, as_json)


@app.command("audit")
def audit_log(
    since: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Only actions since then: a duration ('7d', '12h') or an ISO date/time (UTC)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many to list, newest first.")] = 100,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Operator actions (approve, reject, retract, retry, cancel, publish, push): who, when, what, outcome."""
    from distributor import audit

    try:
        start = audit.since_time(since)
    except ValueError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    ctx = _context(config)
    entries = audit.read(ctx, start, limit)
    if as_json:
        console.print_json(data={"entries": [e.as_dict() for e in entries]})
        return
    table = Table("when (UTC)", "who", "action", "target", "outcome", "detail")
    for e in entries:
        table.add_row(e.at, e.actor, e.action, e.target, e.outcome, e.detail)
    console.print(table)


@app.command()
def retract(
    article: Annotated[str, typer.Argument(help="The article's id or URL.")],
    channel: Annotated[str | None, typer.Option(help="Only this channel (the feeds keep the article).")] = None,
    reason: Annotated[str, typer.Option(help="Why, kept in each delivery's history.")] = "",
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
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
        error(f"{article}: {exc}")
        raise typer.Exit(1) from None
    report = corrections.retract(ctx, article_id, InlineDispatcher(ctx), channel=channel, reason=reason)
    _audit(ctx, "retract", target, "retracted", "; ".join(f"{o.channel}: {o.outcome}" for o in report))
    if as_json:
        console.print_json(data=corrections.report_json(article_id, report))
        return
    table = Table(title=f"retraction of {article_id}")
    for heading in ("channel", "outcome", "detail"):
        table.add_column(heading)
    for row in report:
        table.add_row(row.channel, row.outcome.replace("_", " "), row.detail or row.post_url)
    console.print(table)


@recovery_app.command("status")
def recovery_status(
    config: ConfigOption = None, as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False
) -> None:
    """Whether Redis was found without the service's state (exit code 1 until acknowledged)."""
    from distributor import recovery

    lost = recovery.status(_context(config))
    if as_json:
        console.print_json(data={"state_lost": lost})
    elif lost is None:
        ok("Redis holds the service's state")
    else:
        error(
            f"Redis lost its state ({lost['reason']}), noticed {lost['detected_at']}. Restored from the journal: "
            f"{lost['sources']} sources, {lost['articles']} articles, {lost['deliveries']} deliveries; articles "
            "published since were posted, none already posted was posted again. Check the dashboard and "
            "`distributor deliveries --state unknown`, then `distributor recovery ack`."
        )
    if lost is not None:
        raise typer.Exit(1)


@recovery_app.command("ack")
def recovery_ack(config: ConfigOption = None) -> None:
    """Acknowledge a loss of state: /healthz and the console stop reporting it."""
    from distributor import recovery

    ctx = _context(config)
    if not recovery.acknowledge(ctx):
        _audit(ctx, "recovery-ack", "state-lost", "refused", "no loss of state to acknowledge")
        error("no loss of state to acknowledge")
        raise typer.Exit(1)
    _audit(ctx, "recovery-ack", "state-lost", "acknowledged")
    ok("acknowledged")


@shares_app.command("top")
def shares_top(
    period: Annotated[str, typer.Option(help="day, week, month or all.")] = "week",
    limit: Annotated[int, typer.Option(help="How many articles to list.")] = 10,
    by: Annotated[str, typer.Option(help="shares (readers'), clicks (on our posts) or engagement.")] = "shares",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
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
            raise ValueError(f"--by must be shares, clicks or engagement, got {by!r}")
    except ValueError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    articles = {a.id: a for a in ctx.store.get_many([r[0] for r in rows])}
    if as_json:
        listed = [
            {"id": aid, by: count, "title": articles[aid].title if aid in articles else None,
             "url": articles[aid].url if aid in articles else None}
            for aid, count in rows
        ]  # fmt: skip
        console.print_json(data={"period": period, "by": by, "articles": listed})
        return
    table = Table(by, "article", "title")
    for article_id, count in rows:
        table.add_row(str(count), article_id, articles[article_id].title if article_id in articles else "(removed)")
    console.print(table)


@shares_app.command("export")
def shares_export(
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    period: Annotated[str, typer.Option(help="day, week, month or all.")] = "month",
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file (default: standard output).")] = None,
    config: ConfigOption = None,
) -> None:
    """Every article shared in a period with its counts (period, total, unique, per network) and what our
    posts of it achieved (clicks and engagement, per channel)."""
    from rich.progress import Progress

    from distributor import share_export

    if fmt not in ("csv", "json"):
        error(f"--format must be csv or json, got {fmt!r}")
        raise typer.Exit(2)
    ctx = _context(config)
    try:
        total = share_export.count(ctx, period)
    except ValueError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    stream = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    show = total >= share_export.PAGE  # a bar only where there is something to wait for
    try:
        with Progress(console=Console(stderr=True), disable=not show, transient=True) as progress:
            task = progress.add_task(f"exporting {total} articles", total=total)
            rows = share_export.rows(ctx, period)
            share_export.write(stream, fmt, period, rows, lambda: progress.advance(task), share_export.fields(ctx))
    finally:
        if out:
            stream.close()
    if out:
        ok(f"{total} articles written to {out}")


@sources_app.command("test")
def sources_test(
    name: Annotated[str, typer.Argument(help="The source's name in the config.")], config: ConfigOption = None
) -> None:
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


@channels_app.callback()
def channels(
    ctx_: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    config: ConfigOption = None,
) -> None:
    """Each channel's health: circuit breaker, deliveries in flight, next post time, latest outcomes."""
    if ctx_.invoked_subcommand is not None:
        return
    from distributor import channel_health

    ctx = _context(config)
    entries = channel_health.report(ctx)
    if as_json:
        console.print_json(data={"channels": entries})
        return

    def when(moment: float | None) -> str:
        return datetime.fromtimestamp(moment, ctx.tz).strftime("%Y-%m-%d %H:%M:%S") if moment else ""

    table = Table()
    for heading in ("channel", "type", "enabled", "circuit", "failures", "in flight", "next post", "today"):
        table.add_column(heading, no_wrap=heading in ("channel", "circuit"))
    table.add_column("last sent")
    table.add_column("last error")
    for e in entries:
        circuit = e["breaker"]
        if e["breaker"] == "open":
            circuit += f" until {when(e['open_until'])}"
        if e["reason"] and e["breaker"] != "closed":
            circuit += f": {e['reason']}"
        error_text = f"{when(e['last_error']['at'])} {e['last_error']['message']}" if e["last_error"] else ""
        table.add_row(
            *(e["name"], e["type"], "yes" if e["enabled"] else "no", circuit, str(e["failures_in_a_row"])),
            *(f"{e['in_flight']}/{e['max_in_flight']}", when(e["next_post"]), str(e["posts_today"])),
            *(when(e["last_sent"]), error_text),
        )
    console.print(table)


@channels_app.command("test")
def channels_test(
    name: Annotated[str, typer.Argument(help="The channel's name in the config.")], config: ConfigOption = None
) -> None:
    """Check a channel's credentials with a read-only call; posts nothing. A pass closes a paused
    or open circuit (the operator fixed the credentials)."""
    from distributor import audit, operations

    ctx = _context(config)
    if not operations.known_channel(ctx, name):
        error(f"no channel named {name!r}")
        raise typer.Exit(1)
    result, resumed = operations.test_channel(ctx, audit.cli_actor(), name, _queue_delivery)
    if not result.done:
        error(f"{name}: {result.detail}")
        raise typer.Exit(1)
    ok(f"{name}: {result.detail}")
    if resumed is not None:
        ok(f"{name}: circuit closed; its waiting deliveries are queued again")


@channels_app.command("pause")
def channels_pause(
    name: Annotated[str, typer.Argument(help="The channel's name in the config.")], config: ConfigOption = None
) -> None:
    """Hold a channel's deliveries (nothing is lost) until `distributor channels resume NAME`.

    Example: distributor channels pause facebook
    """
    from distributor import audit, operations

    ctx = _context(config)
    result = operations.pause_channel(ctx, audit.cli_actor(), name)
    if not result.done:
        error(f"no channel named {name!r}")
        raise typer.Exit(1)
    ok(f"{name}: {'paused' if result.outcome == 'paused' else 'already paused'}; {result.detail}")


@channels_app.command("resume")
def channels_resume(
    name: Annotated[str, typer.Argument(help="The channel's name in the config.")], config: ConfigOption = None
) -> None:
    """Close a channel's circuit (paused after an authentication error or by an operator, or open
    after failures): its waiting deliveries go out again."""
    from distributor import audit, operations

    ctx = _context(config)
    result = operations.resume_channel(ctx, audit.cli_actor(), name, _queue_delivery)
    if not result.done:
        error(f"no channel named {name!r}")
        raise typer.Exit(1)
    if result.outcome == "unchanged":
        ok(f"{name}: circuit already closed")
        return
    ok(f"{name}: circuit closed; {result.count} waiting deliveries queued again")


def _redispatch_waiting(ctx, channel: str) -> int:  # type: ignore[no-untyped-def]
    """Kept for callers of the old name: see distributor.operations.redispatch_waiting."""
    from distributor import operations

    return operations.redispatch_waiting(ctx, channel, _queue_delivery)


def main() -> None:
    """The CLI; an expected Redis outage is one line (not a traceback with locals) and status 1."""
    import redis

    from distributor.urls import mask_urls

    try:
        app()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        url = os.environ.get("DISTRIBUTOR_REDIS_URL", "")  # set by _context for the command's Redis
        where = f"Redis at {mask_url(url)}" if url else "Redis"
        error(f"{where} is unavailable ({mask_urls(str(exc))}); start it or check [redis] url, then try again")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
