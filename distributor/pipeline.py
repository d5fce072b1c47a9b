"""The work the Celery tasks do: poll -> detect -> store -> index into feeds -> fan out.

Feed rendering lives in `distributor.rebuild`, posting in `distributor.delivery`.

Every function takes a Context and a Dispatcher (how follow-up work is scheduled: Celery tasks in
the worker, inline calls in the CLI and tests), so the tasks themselves stay one line long.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from distributor import corrections, counters, feedset, recovery
from distributor.context import Context
from distributor.errors import SourceError
from distributor.ledger import AWAITING
from distributor.logs import event
from distributor.models import Article
from distributor.normalize import Draft, is_dated, normalize
from distributor.rebuild import feed_meta
from distributor.urls import MaskUrlSecrets, mask_url, mask_urls

log = logging.getLogger(__name__)
log.addFilter(MaskUrlSecrets())  # a source URL may carry a password or token


class Dispatcher(Protocol):
    def rebuild(self, feeds: Iterable[str]) -> None: ...

    def deliver(self, article_id: str, channel: str, countdown: float = 0) -> None: ...

    def release(self, article_id: str, announce: bool, eta: datetime) -> None: ...

    def ping(self, hubs: list[str], urls: list[str]) -> None: ...

    def notify(self, article_id: str, channels: list[str]) -> None:
        """Send the editors the preview of what awaits approval (`distributor.approval.notify`)."""
        ...

    def edit(self, article_id: str, channel: str, countdown: float = 0) -> None: ...

    def delete(self, article_id: str, channel: str, countdown: float = 0) -> None: ...


@dataclass
class PollReport:
    source: str
    found: int = 0
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    retracted: list[str] = field(default_factory=list)  # removals confirmed on a second poll (retract_on_remove)
    errors: list[str] = field(default_factory=list)
    not_modified: bool = False


def now() -> datetime:
    return datetime.now(UTC)


# --- sources -------------------------------------------------------------------------------------


def to_article(ctx: Context, draft: Draft, source: str) -> Article:
    site = ctx.settings.site
    article = normalize(draft, source=source, tz=ctx.tz, language=site.language, now=now())
    if not is_dated(draft, ctx.tz):
        # An undated entry is dated when first seen; later polls keep that date (or every poll
        # would look like an edit).
        stored = ctx.store.get(article.id)
        if stored is not None:
            article = article.model_copy(update={"published": stored.published, "updated": stored.updated})
    return article


def poll_source(ctx: Context, name: str, dispatch: Dispatcher) -> PollReport:
    """Read one source once and act on what changed. Bad items are reported, never fatal. The
    outcome is counted for /metrics and logged as one event."""
    report = _poll(ctx, name, dispatch)
    outcome = poll_outcome(report)
    counters.count_poll(ctx.redis, ctx.keys, name, outcome)
    log.log(
        logging.DEBUG if outcome == "unchanged" else logging.INFO,  # a quiet source is not news
        "source %s polled: %s", name, outcome,
        extra=event("poll", source=name, state=outcome, found=report.found, new=len(report.new),
                    updated=len(report.updated), errors=len(report.errors)),
    )  # fmt: skip
    return report


def poll_outcome(report: PollReport) -> str:
    """new (articles found), error (the poll or an item failed, nothing new), updated (edits
    only), unchanged."""
    if report.new:
        return "new"
    if report.errors:
        return "error"
    return "updated" if report.updated else "unchanged"


def _poll(ctx: Context, name: str, dispatch: Dispatcher) -> PollReport:
    config = ctx.settings.source(name)
    report = PollReport(source=name)
    restored = recovery.ensure(ctx)  # Redis came back without our state? Say so, restore it.
    source = ctx.source(name)
    state = ctx.store.source_state(name)
    # What the source listed before this poll read it: a poll overlapping another (a slow one, a
    # redelivered task) must not take the other's newer articles for removed ones.
    listed_before = ctx.store.source_items(name)
    try:
        result = source.poll(state)
    except SourceError as exc:
        log.warning("source %s: %s", name, exc)
        report.errors.append(str(exc))
        return report
    except Exception as exc:  # a bug met by odd input: name the source, keep the worker going
        log.exception("source %s: unexpected error while polling %s", name, mask_url(config.url or config.path or ""))
        report.errors.append(mask_urls(f"{name}: unexpected error: {type(exc).__name__}: {exc}"))
        return report
    if result.state != state:
        ctx.store.save_source_state(name, result.state)
    report.errors += [str(e) for e in result.errors]
    for error in result.errors:
        log.warning("%s", error)
    if result.not_modified:
        report.not_modified = True
        if config.retract_on_remove:  # an unchanged listing confirms what the last one no longer had
            report.retracted = corrections.confirm_removals(ctx, name, listed_before, set(), dispatch)
        return report
    announce = config.announce_existing or ctx.store.first_poll_done(name)
    seen: set[str] = set()
    changed_feeds: set[str] = set(ctx.store.feed_meta()) if restored else set()
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
    # A complete listing: what it no longer lists was removed. Not when some items could not be
    # read: a file caught mid-save must not unpublish its article.
    if result.complete and not result.errors:
        removed = listed_before - seen
        for article_id in removed:
            changed_feeds |= unpublish(ctx, article_id)
            report.removed.append(article_id)
        if config.retract_on_remove:  # the posts go only once a second complete listing confirms it
            report.retracted = corrections.confirm_removals(ctx, name, seen, removed, dispatch)
        ctx.store.set_source_items(name, seen)
    if not result.backlog:  # a new source's existing articles may take several polls to read
        ctx.store.mark_polled(name)
    if changed_feeds:
        dispatch.rebuild(sorted(changed_feeds))
    return report


def ingest(
    ctx: Context, article: Article, dispatch: Dispatcher, *, announce: bool, max_age: float | None = None
) -> tuple[str, set[str]]:
    """Store one article; index it into its feeds; fan out deliveries when it is new.

    Returns the change ('new' | 'updated' | 'unchanged') and the feeds whose contents changed.
    Edits update the feeds and are carried to the posts (`distributor.corrections`), never re-posted
    unless a channel asks to; an article published in the future waits; a retracted one stays out.
    """
    if corrections.is_retracted(ctx, article.id):
        return "unchanged", set()
    change = ctx.store.upsert(article)
    if change == "unchanged":
        return change, set()
    if change == "new":  # new to Redis; the journal outside it may know better (Redis lost its state)
        announce = ctx.journal.sighted(article.id, article.published.timestamp(), announce)
    if article.published > now():
        dispatch.release(article.id, announce and change == "new", article.published)
        if change == "new":
            ctx.store.fanout_done(article.id)
        return change, set()
    feeds = publish(ctx, article)
    if change == "new":
        if announce and _fresh(article, max_age):
            fan_out(ctx, article, dispatch)
        ctx.store.fanout_done(article.id)  # a worker killed before this line: `finish_fanouts` does it
    elif change == "updated":
        corrections.on_update(ctx, article, dispatch)
    return change, feeds


def finish_fanouts(ctx: Context, dispatch: Dispatcher, grace: float | None = None) -> int:
    """New articles stored by a worker that died before it created their deliveries (the store marks
    a new article atomically; `ingest` clears the mark once fan-out is decided): decide again, by the
    same rules (the source's no-backfill rule and max_age, the journal's record), and fan out.
    Deliveries already created are kept (`ledger.create` never makes a second one)."""
    grace = ctx.settings.worker.sweep_interval if grace is None else grace
    finished = 0
    for article_id in ctx.store.fanout_overdue(grace):
        article = ctx.store.get(article_id)
        if article is not None and article.published <= now():
            announce, max_age = _announce_rule(ctx, article.source)
            announce = ctx.journal.sighted(article.id, article.published.timestamp(), announce)
            feeds = publish(ctx, article)
            if feeds:
                dispatch.rebuild(sorted(feeds))
            if announce and _fresh(article, max_age):
                fan_out(ctx, article, dispatch)
                finished += 1
        ctx.store.fanout_done(article_id)
    return finished


def _announce_rule(ctx: Context, source: str) -> tuple[bool, float | None]:
    """Whether a new article of `source` is posted, and its max_age: a configured source's rules;
    pushes and the CLI post (that is what they are for)."""
    try:
        config = ctx.settings.source(source)
    except KeyError:
        return source in ("cli", "push"), None
    if config.type == "push":
        return config.enabled, None
    return config.announce_existing or ctx.store.first_poll_done(source), config.max_age


def _fresh(article: Article, max_age: float | None) -> bool:
    return max_age is None or article.published >= now() - timedelta(seconds=max_age)


def publish(ctx: Context, article: Article) -> set[str]:
    """Make a stored article visible: listed, and in every feed that matches it."""
    ctx.store.publish(article)
    defs = feedset.feeds_for(ctx.settings, article)
    for definition in defs:
        ctx.store.register_feed(definition.name, feed_meta(definition))
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


def deliver_now(dispatch: Dispatcher, article_id: str, channels: list[str]) -> None:
    """Dispatch an article's deliveries due now: in one call where the dispatcher takes them so
    (the worker's: one round trip for all), else one by one."""
    if not channels:
        return
    many = getattr(dispatch, "deliver_now", None)
    if many is not None:
        many(article_id, channels)
        return
    for name in channels:
        dispatch.deliver(article_id, name)


def fan_out(ctx: Context, article: Article, dispatch: Dispatcher) -> list[str]:
    """One delivery per (article, channel); an existing record means it was already handled.

    On a channel with `approval = true` the delivery waits for an operator (distributor.approval);
    the editors' channels named by `approval_notify` get one preview of what waits."""
    wanted = [
        (name, AWAITING if ctx.settings.channel(name).approval else "pending") for name in channels_for(ctx, article)
    ]
    made = set(ctx.ledger.create_many(article.id, wanted))
    created = [name for name, state in wanted if name in made and state == "pending"]
    held = [name for name, state in wanted if name in made and state == AWAITING]
    deliver_now(dispatch, article.id, created)
    if any(ctx.settings.channel(name).approval_notify for name in held):
        dispatch.notify(article.id, held)
    return created + held
