"""GET /s/{article_id}/{network}: count a reader's share, then redirect to the network's page.

Only known networks for known articles redirect; anything else is a 404, so the route can never be
used as an open redirect. Bots and repeat clicks are redirected but not counted.
"""

from __future__ import annotations

import ipaddress
import json

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from distributor import metrics
from distributor.shares import COUNT_SCRIPT, NETWORKS, is_bot, share_url
from distributor.web.errors import error, quoted
from distributor.web.state import state


def client_address(request: Request, trusted: list[str]) -> str:
    """The peer address, or the last untrusted X-Forwarded-For hop behind a trusted proxy."""
    peer = request.client.host if request.client else ""
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if not networks or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return peer


async def share(request: Request) -> Response:
    web = state(request)
    settings = web.ctx.settings
    article_id = request.path_params["article_id"]
    network = request.path_params["network"]
    if network not in NETWORKS or network not in settings.shares.networks:
        return error(404, f"unknown network {quoted(network)}")
    raw = await web.redis.get(web.ctx.keys.article(article_id))
    if raw is None:
        return error(404, f"unknown article {quoted(article_id)}")
    article = json.loads(raw)
    user_agent = request.headers.get("user-agent", "")
    if not (settings.shares.ignore_bots and is_bot(user_agent)):
        shares = web.ctx.shares
        keys, args = shares.script_call(
            article_id, network, client_address(request, settings.server.trusted_proxies), user_agent
        )
        counted = await web.redis.eval(COUNT_SCRIPT, len(keys), *keys, *args)
        if counted:
            metrics.SHARES.labels(network).inc()
    target = share_url(network, article["url"], article["title"])
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
