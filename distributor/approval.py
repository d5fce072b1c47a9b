"""Approval: deliveries held on channels with `approval = true` until an operator decides.

`fan_out` creates them `awaiting_approval` (neither due nor swept, so nothing posts them); `approve`
moves them to pending and dispatches them like any other delivery (rate limits and every other
rule apply); `reject` makes them `rejected`, final: no retry, sweep or later approval posts them.
`notify` sends the editors' channel (`approval_notify`) one preview per article, once.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from distributor import text as textlib
from distributor.context import Context
from distributor.errors import N_, ChannelError, Refusal
from distributor.ledger import AWAITING
from distributor.logs import event
from distributor.models import Post

log = logging.getLogger(__name__)

Decision = Literal["approve", "reject"]
PREVIEW_EXCERPT = 280  # characters of each channel's text shown in a preview
NOTICE_KEPT = 30 * 86400  # seconds the "preview sent" marker is kept (retries come much sooner)


@dataclass(frozen=True)
class Outcome:
    """What a decision did on one channel: `done` true when the delivery changed state."""

    channel: str
    done: bool
    state: str  # the delivery's state after the decision
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Deliverer(Protocol):
    """What approving needs of a Dispatcher (distributor.pipeline): sending a delivery now."""

    def deliver(self, article_id: str, channel: str, countdown: float = 0) -> None: ...


class NothingToDecide(Refusal, LookupError):
    """The article has no delivery (on that channel): the message says which."""


def awaiting(ctx: Context, article_id: str) -> list[str]:
    """The channels on which `article_id` waits for approval."""
    names = [c.name for c in ctx.settings.channels]
    return [d.channel for d in ctx.ledger.for_article(article_id, names) if d.state == AWAITING]


def decide(
    ctx: Context,
    decision: Decision,
    article_id: str,
    channel: str | None = None,
    dispatch: Deliverer | None = None,
    reason: str = "",
) -> list[Outcome]:
    """Approve or reject every delivery of `article_id` awaiting approval, or only the one to
    `channel`. Approved ones are dispatched at once through `dispatch` (the sweep would send them
    anyway). Raises NothingToDecide when there is no delivery to look at."""
    names = [c.name for c in ctx.settings.channels]
    if channel is not None and channel not in names:
        raise NothingToDecide(N_("no channel named {channel} in the config"), channel=textlib.quoted(channel))
    records = ctx.ledger.for_article(article_id, [channel] if channel else names)
    if not records:
        if channel:
            raise NothingToDecide(
                N_("no delivery of article {article} to {channel}"), article=textlib.quoted(article_id), channel=channel
            )
        raise NothingToDecide(N_("no delivery of article {article}"), article=textlib.quoted(article_id))
    if channel is None:  # the whole article: the channels that hold deliveries, not every other one
        gated = {c.name for c in ctx.settings.channels if c.approval}
        held = [d for d in records if d.state in (AWAITING, "rejected") or d.channel in gated]
        records = held or records
    outcomes = []
    for record in records:
        if decision == "approve":
            found = ctx.ledger.approve(article_id, record.channel)
        else:
            found = ctx.ledger.reject(article_id, record.channel, reason or "rejected by an operator")
        outcome = _outcome(decision, record.channel, found)
        outcomes.append(outcome)
        log.info(
            "%s %s on %s: %s", decision, article_id, record.channel, outcome.message,
            extra=event("approval", article_id=article_id, channel=record.channel,
                        state=("approved" if decision == "approve" else "rejected") if outcome.done else "refused"),
        )  # fmt: skip
    if decision == "approve" and dispatch is not None:
        for outcome in outcomes:
            if outcome.done:
                dispatch.deliver(article_id, outcome.channel)
    return outcomes


def _outcome(decision: Decision, channel: str, found: str) -> Outcome:
    if found == "ok":
        if decision == "approve":
            return Outcome(channel, True, "pending", "approved: queued for posting")
        return Outcome(channel, True, "rejected", "rejected: it will never be posted")
    if found == "":
        return Outcome(channel, False, "", "no such delivery")
    if found == "rejected":
        why = "it was rejected earlier and will never be posted" if decision == "approve" else "already rejected"
        return Outcome(channel, False, found, f"refused: {why}")
    return Outcome(channel, False, found, f"refused: not awaiting approval (state {found})")


def summary(outcomes: Iterable[Outcome]) -> str:
    """'telegram: approved: queued for posting; facebook: refused: ...' for the audit log."""
    return "; ".join(f"{o.channel}: {o.message}" for o in outcomes)


# --- previews for the editors --------------------------------------------------------------------


def notify(ctx: Context, article_id: str, channels: list[str]) -> dict[str, str]:
    """Send each editors' channel named by `channels`' `approval_notify` one preview of the article
    waiting there; what happened per editors' channel. Sent at most once per (article, editors'
    channel), even when this runs twice (a retried task): a Redis marker is taken first."""
    article = ctx.store.get(article_id)
    if article is None:
        return {}
    targets: dict[str, list[str]] = {}
    for name in channels:
        config = ctx.settings.channel(name)
        if config.approval and config.approval_notify:
            targets.setdefault(config.approval_notify, []).append(name)
    results: dict[str, str] = {}
    for target, waiting in targets.items():
        marker = ctx.keys.approval_notice(article_id, target)
        if not ctx.redis.set(marker, "1", nx=True, ex=NOTICE_KEPT):
            results[target] = "already sent"
            continue
        try:
            adapter = ctx.channel(target)
            post = preview(ctx, article_id, waiting, adapter.markup, adapter.length, adapter.limit, target)
            adapter.send(post, f"{article_id}:approval-preview")
        except ChannelError as exc:
            if not exc.maybe_sent:
                ctx.redis.delete(marker)  # nothing was sent: a later run may try again
            log.warning("approval preview of %s to %s failed: %s", article_id, target, exc.message)
            results[target] = f"failed: {exc.message}"
            continue
        except Exception as exc:  # a bug or an odd answer: the preview is lost, the deliveries still wait
            log.exception("approval preview of %s to %s: unexpected error", article_id, target)
            results[target] = f"failed: {type(exc).__name__}"
            continue
        results[target] = "sent"
    return results


def preview(
    ctx: Context,
    article_id: str,
    waiting: list[str],
    markup: str,
    length: textlib.LengthFn,
    limit: int,
    target: str,
) -> Post:
    """The preview message: the title, what each channel would post (shortened), and how to
    approve or reject it (the command, and the console)."""
    article = ctx.store.get(article_id)
    assert article is not None
    console = ctx.settings.site.public_url.rstrip("/") + "/dashboard"
    lines = [
        f"Awaiting approval on {', '.join(waiting)}: {article.title}",
        article.url,
        f"Approve: distributor approve {article_id}",
        f"Reject: distributor reject {article_id}",
        f"Console: {console}",
    ]
    for name in waiting:  # last: a preview too long for the editors' channel loses these first
        rendered = ctx.channel(name).render(article)
        plain = textlib.html_to_text(rendered.text) if ctx.channel(name).markup == "html" else rendered.text
        lines += ["", f"[{name}]", textlib.truncate(plain, PREVIEW_EXCERPT)]
    body = "\n".join(lines)
    if markup == "html":
        body = html.escape(body, quote=False)
    body = textlib.truncate(body, limit, length)
    return Post(
        channel=target,
        kind=ctx.channel(target).kind,
        article_id=article_id,
        text=body,
        url=article.url,
        title=f"Awaiting approval: {article.title}",
        length=length(body),
        limit=limit,
        extra={"summary": ""},
    )
