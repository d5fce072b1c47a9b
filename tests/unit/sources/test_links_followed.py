"""Links found in content are followed only on the source's own site, and a source on a public
host never reaches loopback, private or link-local addresses: not through a listing link, a
sitemap URL, a child sitemap, a redirect, nor a name that resolves differently the second time.

A "public" portal is played by the loopback server under the name portal.example.gov.vn, whose
address 127.0.0.1 the tests count as public; the internal network is a second server on
127.0.0.2, which must never receive a request.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from distributor import netguard, pipeline
from distributor.context import Context
from distributor.errors import SourceError
from distributor.inline import InlineDispatcher
from distributor.sources.html import HtmlSource
from distributor.sources.sitemap import SitemapSource
from distributor.urls import article_id
from tests.fakes.server import FakeServer, Reply, Request
from tests.unit.sources.web_helpers import web_source

ARTICLE = (Path(__file__).parents[2] / "data" / "sitemaps" / "article.html").read_text(encoding="utf-8")
TITLE = "Hội nghị xúc tiến đầu tư năm 2021"
PORTAL = "portal.example.gov.vn"
LOOPBACK = ipaddress.ip_address("127.0.0.1")
INTERNAL = ipaddress.ip_address("127.0.0.2")


@pytest.fixture(scope="module")
def internal() -> Iterator[FakeServer]:
    with FakeServer(host="127.0.0.2") as fake:
        yield fake


@pytest.fixture
def intranet(internal: FakeServer) -> FakeServer:
    """An internal admin page and metadata service; it must see no request."""
    internal.routes.clear()
    internal.requests.clear()
    internal.add("GET", "/.*", lambda request: Reply(200, f"<h1>Internal admin</h1><p>{'secret ' * 200}</p>"))
    return internal


def port(server: FakeServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[netguard.IPAddress]]]:
    """A resolver for the test's host names, each giving its answers in turn (the last one stays);
    127.0.0.1 counts as a public address."""
    table: dict[str, list[list[netguard.IPAddress]]] = {
        PORTAL: [[LOOPBACK]],
        "other.example.vn": [[LOOPBACK]],
        "intranet.example.vn": [[INTERNAL]],
    }
    real_resolve, real_is_public = netguard.resolve, netguard.is_public

    def resolve(host: str, port: int) -> list[netguard.IPAddress]:
        if host in table:
            answers = table[host]
            return answers.pop(0) if len(answers) > 1 else answers[0]
        if host.replace(".", "").isdigit() or ":" in host:
            return real_resolve(host, port)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")  # nothing reaches real DNS

    monkeypatch.setattr(netguard, "resolve", resolve)
    monkeypatch.setattr(netguard, "is_public", lambda address: address == LOOPBACK or real_is_public(address))
    return table


def article(request: Request) -> Reply:
    return Reply(200, ARTICLE.replace("{base}", ""), {"Content-Type": "text/html; charset=utf-8"})


def listing(*links: str) -> str:
    items = "".join(f'<li><a href="{link}">Tin {n}</a></li>' for n, link in enumerate(links))
    return f"<html><body><ul class='news'>{items}</ul></body></html>"


def html_source(url: str, **options: object) -> HtmlSource:
    return web_source(HtmlSource, url, link_selector="ul.news a", **options)


def refused(errors: list, url: str) -> bool:
    return any(error.input == url and "not fetched" in str(error) for error in errors)


# --- html listings -------------------------------------------------------------------------------


def test_a_public_listing_linking_inside_is_not_followed(server, intranet, names) -> None:
    inside = port(intranet)
    hostile = [
        f"http://127.0.0.2:{inside}/internal-admin",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        f"http://localhost:{inside}/",
        f"http://other.example.vn:{port(server)}/tin/khac.html",  # another site, public or not
        f"http://{PORTAL}:6379/",  # the source's host, another port (Redis)
        f"http://intranet.example.vn:{inside}/admin",
    ]
    server.add("GET", "/tin-tuc", lambda r: Reply(200, listing("/tin/1.html", *hostile), {"Content-Type": "text/html"}))
    server.add("GET", "/tin/.*", article)
    source = html_source(f"http://{PORTAL}:{port(server)}/tin-tuc")

    result = source.poll({})

    assert [draft.title for draft in result.drafts] == [TITLE]
    assert all(refused(result.errors, url) for url in hostile), [str(e) for e in result.errors]
    assert len(result.errors) == len(hostile)
    assert intranet.requests == []
    assert [r.path for r in server.requests] == ["/tin-tuc", "/tin/1.html"]
    assert result.backlog is False  # refusals are not failures to retry: a new source is not held up


def test_allowed_hosts_are_followed_but_never_to_an_internal_address(server, intranet, names) -> None:
    inside = port(intranet)
    other = f"http://other.example.vn:{port(server)}/tin/khac.html"
    internal = f"http://intranet.example.vn:{inside}/admin"
    server.add("GET", "/tin-tuc", lambda r: Reply(200, listing(other, internal), {"Content-Type": "text/html"}))
    server.add("GET", "/tin/.*", article)
    allowed = [f"other.example.vn:{port(server)}", f"intranet.example.vn:{inside}"]
    source = html_source(f"http://{PORTAL}:{port(server)}/tin-tuc", allowed_hosts=allowed)

    result = source.poll({})

    assert [draft.url for draft in result.drafts] == [other]
    [error] = result.errors
    assert error.input == internal
    assert "intranet.example.vn resolves to the non-public address 127.0.0.2" in str(error)
    assert intranet.requests == []


def test_redirects_are_checked_hop_by_hop(server, intranet, names) -> None:
    inside = port(intranet)
    targets = {
        "/tin/a.html": f"http://127.0.0.2:{inside}/internal-admin",  # another host
        "/tin/b.html": f"http://intranet.example.vn:{inside}/admin",  # allowed host, internal address
        "/tin/c.html": "http://169.254.169.254/latest/meta-data/",
        "/tin/d.html": "/tin/1.html",  # on the site: followed
    }
    server.add("GET", "/tin-tuc", lambda r: Reply(200, listing(*targets), {"Content-Type": "text/html"}))
    server.add("GET", "/tin/[a-d].html", lambda r: Reply(302, b"", {"Location": targets[r.path]}))
    server.add("GET", "/tin/1.html", article)
    base = f"http://{PORTAL}:{port(server)}"
    source = html_source(f"{base}/tin-tuc", allowed_hosts=[f"intranet.example.vn:{inside}"])

    result = source.poll({})

    assert [draft.url for draft in result.drafts] == [f"{base}/tin/1.html"]  # the page's own URL
    problems = {error.input: str(error) for error in result.errors}
    assert f"redirected to http://127.0.0.2:{inside}/internal-admin" in problems[f"{base}/tin/a.html"]
    assert "non-public address 127.0.0.2" in problems[f"{base}/tin/b.html"]
    assert "169.254.169.254" in problems[f"{base}/tin/c.html"]
    assert intranet.requests == []


def test_a_name_resolving_inside_at_connection_time_is_refused(server, intranet, names) -> None:
    """DNS rebinding: public when checked before the request, internal when connecting."""
    inside = port(intranet)
    names["rebind.example.vn"] = [[LOOPBACK], [INTERNAL]]
    link = f"http://rebind.example.vn:{inside}/admin"
    server.add("GET", "/tin-tuc", lambda r: Reply(200, listing(link), {"Content-Type": "text/html"}))
    source = html_source(f"http://{PORTAL}:{port(server)}/tin-tuc", allowed_hosts=[f"rebind.example.vn:{inside}"])

    result = source.poll({})

    [error] = result.errors
    assert error.input == link and "rebind.example.vn resolves to the non-public address 127.0.0.2" in str(error)
    assert result.drafts == [] and intranet.requests == []


def test_the_source_url_itself_may_redirect_to_another_public_site(server, intranet, names) -> None:
    """The operator chose the URL: a site that moved is followed, but its links stay on the site
    the operator named (or its allowed_hosts)."""
    moved = f"http://other.example.vn:{port(server)}/tin-tuc-moi"
    server.add("GET", "/tin-tuc", lambda r: Reply(301, b"", {"Location": moved}))
    server.add("GET", "/tin-tuc-moi", lambda r: Reply(200, listing("/tin/1.html"), {"Content-Type": "text/html"}))
    server.add("GET", "/tin/.*", article)
    url = f"http://{PORTAL}:{port(server)}/tin-tuc"

    result = html_source(url).poll({})
    assert result.drafts == [] and refused(result.errors, f"http://other.example.vn:{port(server)}/tin/1.html")

    result = html_source(url, allowed_hosts=[f"other.example.vn:{port(server)}"]).poll({})
    assert [draft.title for draft in result.drafts] == [TITLE] and result.errors == []


def test_a_source_url_redirecting_inside_is_refused(server, intranet, names) -> None:
    server.add("GET", "/tin-tuc", lambda r: Reply(302, b"", {"Location": f"http://127.0.0.2:{port(intranet)}/"}))
    source = html_source(f"http://{PORTAL}:{port(server)}/tin-tuc")
    with pytest.raises(SourceError, match=r"non-public address 127\.0\.0\.2"):
        source.poll({})
    assert intranet.requests == []


def test_a_source_on_loopback_follows_its_links_there_within_the_host_rule(server, intranet) -> None:
    """Real rules, no fake resolver: a source that is itself on 127.0.0.1 (a test site, an
    intranet CMS) may read internal addresses its allowed_hosts name, and nothing else."""
    inside = port(intranet)
    links = ["/tin/1.html", f"http://127.0.0.2:{inside}/tin/2.html", f"http://localhost:{port(server)}/tin/3.html"]
    server.add("GET", "/tin-tuc", lambda r: Reply(200, listing(*links), {"Content-Type": "text/html"}))
    server.add("GET", "/tin/.*", article)
    intranet.routes.clear()
    intranet.add("GET", "/tin/.*", article)

    result = html_source(f"{server.url}/tin-tuc", allowed_hosts=[f"127.0.0.2:{inside}"]).poll({})

    assert sorted(draft.url for draft in result.drafts) == [f"{server.url}/tin/1.html", links[1]]
    [error] = result.errors
    assert error.input == links[2]  # localhost is another host name
    assert [r.path for r in intranet.requests] == ["/tin/2.html"]


def test_many_links_elsewhere_are_named_up_to_a_limit(server, names) -> None:
    links = [f"https://site{n}.example.com/a" for n in range(25)]
    server.add("GET", "/tin-tuc", lambda r: Reply(200, listing(*links), {"Content-Type": "text/html"}))
    result = html_source(f"http://{PORTAL}:{port(server)}/tin-tuc").poll({})
    assert len(result.errors) == 11
    assert "15 more links to other sites not fetched" in str(result.errors[-1])


# --- sitemaps ------------------------------------------------------------------------------------


def urlset(*locs: str) -> bytes:
    rows = "".join(
        f"<url><loc>{loc}</loc><lastmod>2021-07-13T14:0{n}:00Z</lastmod>"
        f"<news:news><news:title>Bài {n}</news:title></news:news></url>"
        for n, loc in enumerate(locs)
    )
    namespaces = (
        'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
    )
    return f"<urlset {namespaces}>{rows}</urlset>".encode()


def index(*locs: str) -> bytes:
    rows = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</sitemapindex>'.encode()


@pytest.mark.parametrize("fetch_pages", [True, False])
def test_a_public_sitemap_listing_inside_is_not_followed(server, intranet, names, fetch_pages) -> None:
    inside = port(intranet)
    base = f"http://{PORTAL}:{port(server)}"
    hostile = [f"http://127.0.0.2:{inside}/internal-admin", "http://169.254.169.254/latest/meta-data/"]
    server.add(
        "GET", "/sitemap.xml", lambda r: Reply(200, index(f"{base}/news.xml", f"http://127.0.0.2:{inside}/x.xml"))
    )
    server.add("GET", "/news.xml", lambda r: Reply(200, urlset(f"{base}/tin/1.html", *hostile)))
    server.add("GET", "/tin/.*", article)

    result = web_source(SitemapSource, f"{base}/sitemap.xml", fetch_pages=fetch_pages).poll({})

    assert [draft.url for draft in result.drafts] == [f"{base}/tin/1.html"]
    assert refused(result.errors, f"http://127.0.0.2:{inside}/x.xml")  # the child sitemap
    assert all(refused(result.errors, url) for url in hostile)
    assert intranet.requests == []


# --- end to end: nothing internal is published ----------------------------------------------------


def test_nothing_internal_reaches_the_feeds(make_settings, server, intranet, names) -> None:
    inside = port(intranet)
    internal = f"http://127.0.0.2:{inside}/internal-admin"
    server.add("GET", "/tin-tuc", lambda r: Reply(200, listing("/tin/1.html", internal), {"Content-Type": "text/html"}))
    server.add("GET", "/tin/.*", article)
    url = f"http://{PORTAL}:{port(server)}/tin-tuc"
    table = {"name": "portal", "type": "html", "url": url, "link_selector": "ul.news a", "politeness": 0, "retries": 0}
    ctx = Context.create(make_settings(sources=[table]))

    report = pipeline.poll_source(ctx, "portal", InlineDispatcher(ctx))

    [new] = report.new
    assert ctx.store.get(new).title == TITLE  # type: ignore[union-attr]
    assert ctx.store.get(article_id(internal)) is None
    assert any(internal in error and "not fetched" in error for error in report.errors)
    assert b"Internal admin" not in ctx.store.load_render("all", "atom")[b"body"]
    assert intranet.requests == []
