"""Articles to feed bytes: RSS 2.0 and Atom 1.0 through feedgen (the only module importing it).

Both XML formats share one FeedGenerator and one set of entries; only the feed-level links differ
(each format's self link), so the costly per-item work happens once. Output depends on the input
alone (dates come from the articles, never from the clock), which keeps ETags stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from distributor import __version__
from distributor import text as textlib
from distributor.feeds import jsonfeed
from distributor.feeds.spec import FORMATS, Entry, FeedSpec, feed_url, last_updated, prepare
from distributor.models import Article

__all__ = ["FORMATS", "FeedSpec", "feed_url", "render", "render_all"]

ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
MEDIA_NS = "http://search.yahoo.com/mrss/"
GENERATOR = "Distributor"
GENERATOR_URI = "https://github.com/distributor-news/distributor"
_SELF_TYPES = {"rss": "application/rss+xml", "atom": "application/atom+xml"}


# feedgen extensions. feedgen's own dc and media extensions would write the same elements, but
# cost about a sixth of a whole rebuild in bench/bench_feeds.py (generic per-field loops, more
# objects per entry); feedgen's enclosure writes an RSS <enclosure length="0">, which validators
# reject.
class _Extension:
    """A feedgen extension that adds nothing; subclasses override what they extend."""

    entry: Entry | None = None
    hubs: tuple[str, ...] = ()

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_rss(self, element: Any) -> Any:
        return element

    def extend_atom(self, element: Any) -> Any:
        return element


class _RssChannel(_Extension):
    """<atom:link rel="hub"> on the channel (feedgen writes only rel=self there)."""

    def extend_ns(self) -> dict[str, str]:
        return {"dc": DC_NS, "media": MEDIA_NS}

    def extend_rss(self, element: Any) -> Any:
        channel = element[0]
        for hub in self.hubs:
            xml_elem(f"{{{ATOM_NS}}}link", channel, href=hub, rel="hub")
        return element


class _RssItem(_Extension):
    """dc:creator (RSS <author> must be an email) and the lead image as typed media:content."""

    def extend_rss(self, element: Any) -> Any:
        entry = self.entry
        if entry is None:
            return element
        if entry.author:
            xml_elem(f"{{{DC_NS}}}creator", element).text = entry.author
        if entry.image:
            xml_elem(f"{{{MEDIA_NS}}}content", element, url=entry.image, type=entry.image_type, medium="image")
            xml_elem(f"{{{MEDIA_NS}}}thumbnail", element, url=entry.image)
        return element


class _AtomEntry(_Extension):
    """The lead image as <link rel="enclosure">, typed, without a length (optional in Atom)."""

    def extend_atom(self, element: Any) -> Any:
        entry = self.entry
        if entry is not None and entry.image:
            # feedgen writes Atom elements un-namespaced under a literal xmlns; match it.
            xml_elem("link", element, href=entry.image, rel="enclosure", type=entry.image_type)
        return element


def _generator(spec: FeedSpec, entries: Sequence[Entry]) -> Any:
    fg = FeedGenerator()
    fg.register_extension("rss_extras", _RssChannel, _RssItem, atom=False, rss=True)
    fg.register_extension("atom_extras", _Extension, _AtomEntry, atom=True, rss=False)
    fg.rss_extras.hubs = spec.hubs
    title = textlib.clean_text(spec.title) or spec.name
    fg.id(feed_url(spec, "atom"))
    fg.title(title)
    fg.description(textlib.clean_text(spec.description) or title)
    fg.language(spec.language)
    fg.ttl(spec.ttl)
    fg.generator(GENERATOR, version=__version__, uri=GENERATOR_URI)
    fg.author({"name": textlib.clean_text(spec.author) or title, "uri": spec.site_url})
    if spec.image:
        fg.image(url=spec.image, title=title, link=spec.site_url)
    fg.updated(last_updated(entries))
    for entry in entries:
        _add(fg.add_entry(order="append"), entry)
    return fg


def _add(fe: Any, entry: Entry) -> None:
    fe.id(entry.id)  # also the RSS guid, isPermaLink="false"
    fe.title(entry.title)
    fe.link(href=entry.url, rel="alternate")
    if entry.summary:
        fe.summary(entry.summary_html, type="html")
    if entry.content:
        fe.content(entry.content, type="html")
    fe.published(entry.published)
    fe.updated(entry.updated)
    if entry.author:
        fe.author(name=entry.author)  # Atom only: without an email feedgen writes no RSS author
    if entry.labels:
        fe.category([{"term": label} for label in entry.labels])
    fe.rss_extras.entry = entry
    fe.atom_extras.entry = entry


def _links(fg: Any, spec: FeedSpec, fmt: str) -> None:
    own = {"href": feed_url(spec, fmt), "rel": "self", "type": _SELF_TYPES[fmt]}
    home = {"href": spec.site_url, "rel": "alternate", "type": "text/html"}
    hubs = [{"href": hub, "rel": "hub"} for hub in spec.hubs] if fmt == "atom" else []
    # feedgen takes the RSS <link> from the last link given: keep the site last for RSS.
    fg.link([own, *hubs, home], replace=True)


def _xml(fg: Any, spec: FeedSpec, fmt: str) -> bytes:
    _links(fg, spec, fmt)
    body: bytes = fg.rss_str() if fmt == "rss" else fg.atom_str()
    return body


def render(spec: FeedSpec, articles: Sequence[Article], fmt: str) -> bytes:
    """One format's bytes; `articles` newest first and already limited."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown feed format {fmt!r} (known: {', '.join(FORMATS)})")
    entries = prepare(spec, articles)
    if fmt == "json":
        return jsonfeed.render_json(spec, entries)
    return _xml(_generator(spec, entries), spec, fmt)


def render_all(spec: FeedSpec, articles: Sequence[Article]) -> dict[str, bytes]:
    """Every format, each article prepared once and the feedgen entries shared by RSS and Atom."""
    entries = prepare(spec, articles)
    fg = _generator(spec, entries)
    return {
        "rss": _xml(fg, spec, "rss"),
        "atom": _xml(fg, spec, "atom"),
        "json": jsonfeed.render_json(spec, entries),
    }
