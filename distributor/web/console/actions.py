"""The console's actions: form POSTs (CSRF-checked on admission, see guard.py) that call the same
library functions as the command line, record themselves in the audit log under the signed-in
operator's name, and answer 303 back to the page with a flash message."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from distributor import approval, audit, corrections, operations
from distributor.i18n import said
from distributor.web.access import actor
from distributor.web.api import WebDispatcher
from distributor.web.console import session as sessions
from distributor.web.console.guard import form_fields
from distributor.web.console.render import back, gettext_for, locale_of, page, safe_next
from distributor.web.state import state

CHANNELS = "/dashboard/channels"


class _Queued:
    """Deliveries go to the worker (rate limits, the circuit and all); the web process posts nothing."""

    def __init__(self, request: Request) -> None:
        self.enqueue = request.app.state.enqueue

    def deliver(self, article_id: str, channel: str, countdown: float = 0) -> None:
        self.enqueue("worker.tasks.deliver", [article_id, channel])

    def __call__(self, article_id: str, channel: str) -> None:
        self.deliver(article_id, channel)


async def _field(request: Request, name: str, limit: int = 500) -> str:
    return (await form_fields(request)).get(name, "").strip()[:limit]


# --- sign-in -------------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    web = state(request)
    _ = gettext_for(locale_of(request))
    target = await _field(request, "next", 1000)
    target = target if safe_next(target) else "/dashboard"
    if not web.ctx.settings.server.api_tokens:
        return RedirectResponse("/dashboard", status_code=303)
    if await sessions.sign_in_blocked(request):
        message = _("Too many failed sign-ins from this address: wait a few minutes and try again.")
        return await page(request, "login.html", status=429, next=target, failed=True, message=message)
    from distributor.web.auth import matching_token

    name = matching_token(await _field(request, "token", 4096), web.ctx.settings.server)
    client = sessions.client_key(request)
    if name is None:
        await sessions.sign_in_failed(request)
        await run_in_threadpool(audit.record, web.ctx, f"console:{client}", "sign-in", "console", "refused")
        message = _("That token is not valid.")
        return await page(request, "login.html", status=401, next=target, failed=True, message=message)
    session = await sessions.create(web, name)
    await run_in_threadpool(audit.record, web.ctx, name, "sign-in", "console", "signed in", f"from {client}")
    response = RedirectResponse(target, status_code=303)
    await sessions.set_cookie(request, response, session)
    return response


async def logout(request: Request) -> Response:
    web = state(request)
    current: sessions.Session | None = request.state.console_session
    if current is not None:
        await sessions.end(web, current)
    await run_in_threadpool(audit.record, web.ctx, actor(request), "sign-out", "console", "signed out")
    target = "/dashboard/login" if web.ctx.settings.server.api_tokens else "/dashboard"
    response = RedirectResponse(target, status_code=303)
    sessions.clear_cookie(request, response)
    return response


# --- deliveries ----------------------------------------------------------------------------------


async def retry(request: Request) -> Response:
    ctx = state(request).ctx
    _ = gettext_for(locale_of(request))
    article_id, channel = request.path_params["article_id"][:100], request.path_params["channel"][:80]
    result = await run_in_threadpool(
        operations.retry_delivery, ctx, actor(request), article_id, channel, _Queued(request)
    )
    if not result.done:
        return await back(request, "error", _("Nothing to retry for %(channel)s (%(why)s).") % _named(channel, result))
    if result.outcome == "awaiting approval":
        return await back(request, "ok", _("%(channel)s: awaits approval again.") % {"channel": channel})
    return await back(request, "ok", _("%(channel)s: queued again.") % {"channel": channel})


async def cancel(request: Request) -> Response:
    ctx = state(request).ctx
    _ = gettext_for(locale_of(request))
    article_id, channel = request.path_params["article_id"][:100], request.path_params["channel"][:80]
    result = await run_in_threadpool(operations.cancel_delivery, ctx, actor(request), article_id, channel)
    if not result.done:
        return await back(request, "error", _("Nothing to cancel for %(channel)s (%(why)s).") % _named(channel, result))
    return await back(request, "ok", _("%(channel)s: cancelled; it will not be posted.") % {"channel": channel})


def _named(channel: str, result: operations.Outcome) -> dict[str, Any]:
    return {"channel": channel, "why": result.detail}


# --- articles ------------------------------------------------------------------------------------


async def approve(request: Request) -> Response:
    return await _decide(request, "approve")


async def reject(request: Request) -> Response:
    return await _decide(request, "reject")


async def _article_form(request: Request) -> tuple[str, str | None, str, str]:
    """An article action's form: (article id, channel or None, reason, the audit log's target)."""
    article_id = request.path_params["article_id"][:100]
    channel = await _field(request, "channel", 80) or None
    reason = await _field(request, "reason")
    return article_id, channel, reason, f"{article_id} -> {channel}" if channel else article_id


async def _decide(request: Request, decision: approval.Decision) -> Response:
    ctx = state(request).ctx
    _ = gettext_for(locale_of(request))
    article_id, channel, reason, target = await _article_form(request)
    try:
        outcomes = await run_in_threadpool(
            approval.decide, ctx, decision, article_id, channel, _Queued(request), reason
        )
    except approval.NothingToDecide as exc:
        await run_in_threadpool(audit.record, ctx, actor(request), decision, target, "refused", str(exc))
        return await back(request, "error", _("Nothing awaits approval here."))
    done = any(o.done for o in outcomes)
    outcome = ("approved" if decision == "approve" else "rejected") if done else "refused"
    summary = approval.summary(outcomes)
    await run_in_threadpool(audit.record, ctx, actor(request), decision, target, outcome, summary)
    if not done:
        return await back(request, "error", _("Refused: %(why)s") % {"why": summary})
    message = _("Approved: it is being posted.") if decision == "approve" else _("Rejected: it will not be posted.")
    return await back(request, "ok", message)


async def retract(request: Request) -> Response:
    ctx = state(request).ctx
    _ = gettext_for(locale_of(request))
    article_id, channel, reason, target = await _article_form(request)
    try:
        found = await run_in_threadpool(corrections.article_reference, ctx, article_id, channel)
    except ValueError as exc:
        await run_in_threadpool(audit.record, ctx, actor(request), "retract", target, "refused", str(exc))
        return await back(request, "error", _("Cannot retract: %(why)s") % {"why": said(exc, locale_of(request))})
    dispatch = WebDispatcher(ctx, request.app.state.enqueue)
    report = await run_in_threadpool(lambda: corrections.retract(ctx, found, dispatch, channel=channel, reason=reason))
    detail = "; ".join(f"{o.channel}: {o.outcome}" for o in report)
    await run_in_threadpool(audit.record, ctx, actor(request), "retract", target, "retracted", detail)
    return await back(request, "ok", _("Retracted: %(report)s") % {"report": detail or "-"})


# --- channels and sources ------------------------------------------------------------------------


async def pause(request: Request) -> Response:
    ctx = state(request).ctx
    _ = gettext_for(locale_of(request))
    name = request.path_params["channel"][:80]
    result = await run_in_threadpool(operations.pause_channel, ctx, actor(request), name)
    if not result.done:
        return await back(request, "error", _("No channel named %(channel)s.") % {"channel": name}, CHANNELS)
    if result.outcome == "unchanged":
        return await back(request, "ok", _("%(channel)s was already paused.") % {"channel": name}, CHANNELS)
    message = _("%(channel)s paused: its deliveries wait until you resume it.") % {"channel": name}
    return await back(request, "ok", message, CHANNELS)


async def resume(request: Request) -> Response:
    ctx = state(request).ctx
    _ = gettext_for(locale_of(request))
    name = request.path_params["channel"][:80]
    result = await run_in_threadpool(operations.resume_channel, ctx, actor(request), name, _Queued(request))
    if not result.done:
        return await back(request, "error", _("No channel named %(channel)s.") % {"channel": name}, CHANNELS)
    if result.outcome == "unchanged":
        return await back(request, "ok", _("%(channel)s was not paused.") % {"channel": name}, CHANNELS)
    message = _("%(channel)s resumed: %(count)s waiting deliveries queued again.") % {
        "channel": name,
        "count": result.count,
    }
    return await back(request, "ok", message, CHANNELS)


async def test(request: Request) -> Response:
    ctx = state(request).ctx
    _ = gettext_for(locale_of(request))
    name = request.path_params["channel"][:80]
    result, resumed = await run_in_threadpool(operations.test_channel, ctx, actor(request), name, _Queued(request))
    if not result.done:
        message = _("%(channel)s: credentials test failed: %(why)s") % {"channel": name, "why": result.detail}
        return await back(request, "error", message, CHANNELS)
    message = _("%(channel)s: credentials work (%(detail)s).") % {"channel": name, "detail": result.detail}
    if resumed is not None:
        message += " " + _("The channel was resumed.")
    return await back(request, "ok", message, CHANNELS)


async def poll(request: Request) -> Response:
    ctx = state(request).ctx
    _ = gettext_for(locale_of(request))
    name = request.path_params["source"][:80]
    if name not in {s.name for s in ctx.settings.sources}:
        await run_in_threadpool(audit.record, ctx, actor(request), "poll", name, "refused", "no such source")
        return await back(request, "error", _("No source named %(source)s.") % {"source": name}, "/dashboard/sources")
    request.app.state.enqueue("worker.tasks.poll_source", [name])
    await run_in_threadpool(audit.record, ctx, actor(request), "poll", name, "queued")
    message = _("%(source)s: a poll was queued; reload this page in a moment.") % {"source": name}
    return await back(request, "ok", message, "/dashboard/sources")
