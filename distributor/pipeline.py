"""The work the Celery tasks do: poll -> detect -> store -> rebuild feeds -> fan out -> deliver.

Every function takes a Context and a Dispatcher (how follow-up work is scheduled: Celery tasks in
the worker, inline calls in the CLI and tests), so the tasks themselves stay one line long.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from distributor import feedset
from distributor.context import Context
from distributor.errors import ChannelError, SourceError
from distributor.feeds.build import FORMATS, FeedSpec, feed_url, render_all
from distributor.models import Article
from distributor.normalize import Draft, normalize
from distributor.ratelimit import RateLimiter

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def rebuild(self, feeds: Iterable[str]) -> None: ...

    def deliver(self, article_id: str, channel: str, countdown: float = 0) -> None: ...

    def release(self, article_id: str, announce: bool, eta: datetime) -> None: ...

    def ping(self, hubs: list[str], urls: list[str]) -> None: ...


@dataclass
class PollReport:
    source: str
    found: int = 0
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_modified: bool = False


def now() -> datetime:
    return datetime.now(UTC)


# --- sources -------------------------------------------------------------------------------------


def to_article(ctx: Context, draft: Draft, source: str) -> Article:
    site = ctx.settings.site
    article = normalize(draft, source=source, tz=ctx.tz, language=site.language, now=now())
    if draft.published is None and draft.updated is None:
        # An undated entry is dated when first seen; later polls keep that date (or every poll
        # would look like an edit).
        stored = ctx.store.get(article.id)
        if stored is not None:
            article = article.model_copy(update={"published": stored.published, "updated": stored.updated})
    return article


def poll_source(ctx: Context, name: str, dispatch: Dispatcher) -> PollReport:
    """Read one source once and act on what changed. Bad items are reported, never fatal."""
    config = ctx.settings.source(name)
    report = PollReport(source=name)
    source = ctx.source(name)
    state = ctx.store.source_state(name)
    try:
        result = source.poll(state)
    except SourceError as exc:
        log.warning("source %s: %s", name, exc)
        report.errors.append(str(exc))
        return report
    if result.state != state:
        ctx.store.save_source_state(name, result.state)
    report.errors += [str(e) for e in result.errors]
    for error in result.errors:
        log.warning("%s", error)
    if result.not_modified:
        report.not_modified = True
        return report
    announce = config.announce_existing or ctx.store.first_poll_done(name)
    seen: set[str] = set()
    changed_feeds: set[str] = set()
    for draft in result.drafts:
        try:
            article = to_article(ctx, draft, name)
        except ValueError as exc:
            message = f"{name}: {draft.url or '?'}: skipped: {exc}"
            log.warning("%s", message)
            report.errors.append(message)
            continue
        if article.id in seen:
            continue  # the same article listed twice in one source
        seen.add(article.id)
        change, feeds = ingest(ctx, article, dispatch, announce=announce, max_age=config.max_age)
        changed_feeds |= feeds
        if change == "new":
            report.new.append(article.id)
        elif change == "updated":
            report.updated.append(article.id)
        else:
            report.unchanged += 1
    report.found = len(seen)
    if result.complete:
        for article_id in ctx.store.source_items(name) - seen:
            changed_feeds |= unpublish(ctx, article_id)
            report.removed.append(article_id)
    ctx.store.set_source_items(name, seen, replace=result.complete)
    ctx.store.mark_polled(name)
    if changed_feeds:
        dispatch.rebuild(sorted(changed_feeds))
    return report


def ingest(
    ctx: Context, article: Article, dispatch: Dispatcher, *, announce: bool, max_age: float | None = None
) -> tuple[str, set[str]]:
    """Store one article; index it into its feeds; fan out deliveries when it is new.

    Returns the change ('new' | 'updated' | 'unchanged') and the feeds whose contents changed.
    Edits update the feeds but never re-post; an article published in the future waits.
    """
    change = ctx.store.upsert(article)
    if change == "unchanged":
        return change, set()
    if article.published > now():
        dispatch.release(article.id, announce and change == "new", article.published)
        return change, set()
    feeds = publish(ctx, article)
    if change == "new" and announce and _fresh(article, max_age):
        fan_out(ctx, article, dispatch)
    return change, feeds


def _fresh(article: Article, max_age: float | None) -> bool:
    return max_age is None or article.published >= now() - timedelta(seconds=max_age)


def publish(ctx: Context, article: Article) -> set[str]:
    """Make a stored article visible: listed, and in every feed that matches it."""
    ctx.store.publish(article)
    defs = feedset.feeds_for(ctx.settings, article)
    for definition in defs:
        ctx.store.register_feed(definition.name, _meta(definition))
    return ctx.store.index(article, [d.name for d in defs])


def release(ctx: Context, article_id: str, announce: bool, dispatch: Dispatcher) -> None:
    """An article's publish time has come: list it, rebuild its feeds, post it if it was new."""
    article = ctx.store.get(article_id)
    if article is None or ctx.store.is_published(article_id):
        return
    if article.published > now() + timedelta(seconds=1):
        dispatch.release(article_id, announce, article.published)  # moved later by an edit
        return
    feeds = publish(ctx, article)
    if feeds:
        dispatch.rebuild(sorted(feeds))
    if announce:
        fan_out(ctx, article, dispatch)


def unpublish(ctx: Context, article_id: str) -> set[str]:
    feeds = ctx.store.unindex(article_id)
    ctx.store.remove(article_id)
    for channel in ctx.settings.channels:
        ctx.ledger.cancel(article_id, channel.name, "article unpublished before it was posted")
    return feeds


def channels_for(ctx: Context, article: Article) -> list[str]:
    return [
        c.name
        for c in ctx.settings.channels
        if c.enabled and (not c.categories or set(c.categories) & set(article.categories))
    ]


def fan_out(ctx: Context, article: Article, dispatch: Dispatcher) -> list[str]:
    """One delivery per (article, channel); an existing record means it was already handled."""
    created = [name for name in channels_for(ctx, article) if ctx.ledger.create(article.id, name)]
    for name in created:
        dispatch.deliver(article.id, name)
    return created


# --- feeds ---------------------------------------------------------------------------------------


def _meta(definition: feedset.FeedDef) -> dict[str, object]:
    return {
        "title": definition.title,
        "description": definition.description,
        "limit": definition.limit,
        "ttl": definition.ttl,
        "hubs": list(definition.hubs),
        "category": definition.category,
    }


def register_configured_feeds(ctx: Context) -> list[str]:
    """Configured feeds exist (and are served) even before their first article."""
    names = []
    for definition in feedset.configured(ctx.settings):
        ctx.store.register_feed(definition.name, _meta(definition))
        names.append(definition.name)
    return names


def spec_for(ctx: Context, name: str, meta: dict[str, object]) -> FeedSpec:
    site = ctx.settings.site
    return FeedSpec(
        name=name,
        title=str(meta.get("title") or site.title),
        description=str(meta.get("description") or site.title),
        self_url="",
        base_url=site.public_url.rstrip("/"),
        site_url=site.url,
        language=site.language,
        ttl=int(str(meta.get("ttl") or 15)),
        hubs=tuple(str(h) for h in meta.get("hubs") or ()),  # type: ignore[attr-defined]
        image=site.logo,
        author=site.author or site.title,
        timezone=site.timezone,
    )


_render_lock = threading.Lock()  # feedgen switches the process-wide locale while it formats dates


def rebuild_feeds(ctx: Context, names: Iterable[str], dispatch: Dispatcher | None = None) -> list[str]:
    """Re-render the named feeds in every format; return those whose bytes changed."""
    metas = ctx.store.feed_meta()
    changed = []
    for name in names:
        meta = metas.get(name)
        if meta is None:
            continue
        # One rebuild of a feed at a time across all workers: a slow rebuild that read older
        # articles must not overwrite a newer rendering.
        with ctx.redis.lock(ctx.keys.lock(f"feed:{name}"), timeout=120, blocking_timeout=120):
            if _rebuild_one(ctx, name, meta):
                changed.append(name)
                spec = spec_for(ctx, name, meta)
                if spec.hubs and dispatch is not None:
                    dispatch.ping(list(spec.hubs), [feed_url(spec, fmt) for fmt in FORMATS])
    return changed


def _rebuild_one(ctx: Context, name: str, meta: dict[str, object]) -> bool:
    spec = spec_for(ctx, name, meta)
    articles = ctx.store.feed_articles(name, int(str(meta.get("limit") or 50)))
    modified = max((a.updated for a in articles), default=datetime(2000, 1, 1, tzinfo=UTC))
    with _render_lock:
        rendered = render_all(spec, articles)
    feed_changed = False
    for fmt, body in rendered.items():
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        current = ctx.store.load_render(name, fmt)
        if current.get(b"etag", b"").decode() == etag:
            continue
        ctx.store.save_render(name, fmt, body, etag, modified)
        write_public(ctx.settings.public_dir / "feeds" / f"{name}.{FORMATS[fmt][1]}", body)
        feed_changed = True
    if feed_changed:
        ctx.redis.publish(ctx.keys.feed_updates(), name)
    return feed_changed


def write_public(path: Path, body: bytes) -> None:
    """Atomic write: a static server never serves a half-written feed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(body)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- delivery ------------------------------------------------------------------------------------


@dataclass
class DeliveryResult:
    state: str  # sent | failed | unknown | cancelled | retry | skipped
    retry_in: float = 0.0
    detail: str = ""


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: 10 s, 20 s, 40 s ... capped at one hour."""
    base: float = min(3600.0, 10.0 * 2 ** max(0, attempt - 1))
    return base * random.uniform(0.8, 1.2)


def deliver(ctx: Context, article_id: str, channel_name: str) -> DeliveryResult:
    """Post one article to one channel, at most once, recording the outcome in the ledger."""
    ledger = ctx.ledger
    try:
        channel = ctx.channel(channel_name)
    except KeyError:
        ledger.cancel(article_id, channel_name, f"channel {channel_name!r} is no longer configured")
        return DeliveryResult("cancelled", detail="channel not configured")
    claim = ledger.claim(article_id, channel_name, ctx.settings.worker.lease)
    if claim in ("busy", "done", "missing"):
        return DeliveryResult("skipped", detail=claim)
    key = f"{article_id}:{channel_name}"
    article = ctx.store.get(article_id)
    if article is None:
        ledger.failed(article_id, channel_name, "article no longer exists (unpublished)")
        return DeliveryResult("failed", detail="article gone")
    post = channel.render(article)
    if claim == "crashed" and not channel.idempotent:
        existing = channel.find_existing(post, key) if channel.supports_readback else None
        if existing is not None:
            ledger.sent(article_id, channel_name, existing.post_id, existing.url, note="confirmed by read-back")
            return DeliveryResult("sent", detail="read-back")
        if not channel.supports_readback:
            message = "a worker stopped mid-send; the post may exist: check the platform, then retry or cancel"
            ledger.unknown(article_id, channel_name, message)
            return DeliveryResult("unknown", detail=message)
    if channel.settings.rate_per_minute:
        wait = RateLimiter(ctx.redis).wait_time(ctx.keys.rate(channel_name), channel.settings.rate_per_minute)
        if wait > 0:
            ledger.retry_later(article_id, channel_name, wait, "waiting for the channel's rate limit")
            return DeliveryResult("retry", retry_in=wait, detail="rate limit")
    try:
        receipt = channel.send(post, key)
    except ChannelError as exc:
        return _failed(ctx, article_id, channel_name, channel.idempotent or channel.supports_readback, exc)
    ledger.sent(article_id, channel_name, receipt.post_id, receipt.url)
    log.info("delivered %s to %s: %s", article_id, channel_name, receipt.post_id)
    return DeliveryResult("sent", detail=receipt.post_id or "")


def _failed(ctx: Context, article_id: str, channel: str, safe_to_repeat: bool, exc: ChannelError) -> DeliveryResult:
    ledger = ctx.ledger
    message = exc.message if exc.code is None else f"{exc.message} (code {exc.code})"
    if exc.duplicate:
        ledger.sent(article_id, channel, None, None, note=f"platform reports a duplicate: {message}")
        return DeliveryResult("sent", detail="duplicate")
    if exc.permanent:
        ledger.failed(article_id, channel, message, exc.code)
        log.warning("delivery %s to %s failed permanently: %s", article_id, channel, message)
        return DeliveryResult("failed", detail=message)
    if exc.maybe_sent and not safe_to_repeat:
        ledger.unknown(article_id, channel, f"{message}; the post may exist: check, then retry or cancel")
        return DeliveryResult("unknown", detail=message)
    record = ledger.get(article_id, channel)
    attempts = record.attempts if record else 1
    if attempts >= ctx.settings.worker.max_attempts:
        ledger.failed(article_id, channel, f"gave up after {attempts} attempts: {message}", exc.code)
        return DeliveryResult("failed", detail=message)
    delay = exc.retry_after if exc.retry_after is not None else backoff(attempts)
    ledger.retry_later(article_id, channel, delay, message, exc.code)
    log.info("delivery %s to %s will retry in %.0fs: %s", article_id, channel, delay, message)
    return DeliveryResult("retry", retry_in=delay, detail=message)


def sweep(ctx: Context, dispatch: Dispatcher) -> int:
    """Re-dispatch deliveries whose task was lost; the ledger's claim makes duplicates harmless."""
    overdue = ctx.ledger.overdue()
    for article_id, channel in overdue:
        dispatch.deliver(article_id, channel)
    return len(overdue)
