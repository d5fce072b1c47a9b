"""GET /s/{article_id}/{network}: count a reader's share, then redirect to the network's page.

Only known networks for known articles redirect; anything else is a 404, so the route can never be
used as an open redirect. `copy` (a "copy link" click) is counted and answered 204. Bots and repeat
clicks are redirected but not counted. The answer never waits on Redis for the count (see
share_counter.py); the article's URL and title come from a small in-process cache.
"""

from __future__ import annotations

import functools
import ipaddress

from starlette.requests import Request
from starlette.responses import Response

from distributor.shares import NETWORKS, Click, is_bot
from distributor.web.errors import error, quoted
from distributor.web.state import state

NO_STORE = {"Cache-Control": "no-store"}


class ShareRedirect(Response):
    """A 302 to a Location encoded once per (article, network): the click path's answer, without
    Starlette quoting and encoding the same long URL again on every click."""

    def __init__(self, location: bytes) -> None:
        self.status_code = 302
        self.background = None
        self.body = b""
        self.raw_headers = [(b"location", location), (b"cache-control", b"no-store"), (b"content-length", b"0")]


@functools.cache
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The trusted proxies parsed once, not on every click."""
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def client_address(request: Request, trusted: list[str]) -> str:
    """The peer address, or the last untrusted X-Forwarded-For hop behind a trusted proxy."""
    peer = request.client.host if request.client else ""
    if not trusted:
        return peer
    networks = _networks(tuple(trusted))

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
    settings = web.ctx.settings.shares
    article_id = request.path_params["article_id"]
    network = request.path_params["network"]
    if network not in NETWORKS or network not in settings.networks:
        return error(404, f"unknown network {quoted(network)}")
    clicks = web.click_path
    article = await clicks.articles.get(article_id)
    if article is None:
        return error(404, f"unknown article {quoted(article_id)}")
    user_agent = request.headers.get("user-agent", "")
    if not (settings.ignore_bots and is_bot(user_agent)):
        client = client_address(request, web.ctx.settings.server.trusted_proxies)
        clicks.counter.add(Click.make(article_id, network, client, user_agent, web.ctx.shares.hour()))
    target = article.target(network, settings.utm, settings.utm_campaign)
    if target is None:  # copy: the page copies the link itself
        return Response(status_code=204, headers=NO_STORE)
    return ShareRedirect(target)
