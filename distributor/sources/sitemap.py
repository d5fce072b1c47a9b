"""A sitemap.xml, a sitemap index, or a Google News sitemap, driven by `<lastmod>`.

A sitemap lists URLs, not articles: each URL that is new, or whose lastmod moved forward, is
fetched and its article extracted (`fetch_pages`), newest first and at most `max_urls_per_poll`
per poll; the rest wait for the next poll. News sitemaps also give the title, publication date
and keywords, which fill what the page does not say (or stand alone with `fetch_pages = false`).
A URL with no article behind it is not read again until its lastmod changes; one whose page
cannot be downloaded is tried on the next polls, `MAX_TRIES` at most.

What was seen is kept compactly in the state: a bounded map URL -> lastmod plus a `floor`, the
newest lastmod among the URLs forgotten to keep the map bounded; an unknown URL at or before the
floor is old, not new. A forgotten URL without lastmod leaves a short fingerprint instead.

An index child with a lastmod is read again only when that lastmod changes; one without is read
with a conditional GET, and then the index itself is read in full on every poll (its 304 would
say nothing about such a child).
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import io
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from lxml import etree
from pydantic import Field, field_validator

from distributor import charsets
from distributor.dates import parse_date, zone
from distributor.errors import SourceError
from distributor.fetch import Fetched
from distributor.normalize import Draft
from distributor.settings import _
from distributor.sources.base import PollResult
from distributor.sources.web import Selectors, WebSource, WebSourceSettings, validators, xml_bytes
from distributor.urls import absolute, is_http_url

ACCEPT_XML = "application/xml, text/xml;q=0.9, */*;q=0.5"
ACCEPT_HTML = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
MAX_DEPTH = 3  # index -> index -> index -> urlset
MAX_SEEN = 5000  # URLs remembered with their lastmod
MAX_FORGOTTEN = 100_000  # fingerprints of forgotten URLs without lastmod (12 bytes each)
MAX_TRIES = 5  # polls a page may fail to download before it waits for its lastmod to change


class SitemapSourceSettings(WebSourceSettings):
    max_urls_per_poll: int = Field(default=50, ge=1, le=1000)
    fetch_pages: bool = True
    max_sitemaps: int = Field(default=20, ge=1, le=500)  # child sitemaps read per poll
    include: str | None = None  # regex: only URLs it matches are articles
    exclude: str | None = None  # regex: URLs it matches are not articles
    selectors: Selectors = {}  # as for html sources: CSS overriding extraction

    @field_validator("include", "exclude")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(_("not a valid regular expression: {error}").format(error=exc)) from None
        return value


@dataclass
class Entry:
    """One `<url>` of a sitemap."""

    url: str
    lastmod: str = ""  # UTC, "YYYY-MM-DDTHH:MM:SSZ", comparable as text; "" when not given
    title: str = ""  # news:title
    published: str = ""  # news:publication_date
    keywords: list[str] = field(default_factory=list)
    image: str | None = None
    language: str | None = None
    sitemap: str = ""  # the sitemap that listed it


@dataclass
class Memory:
    """What earlier polls saw, kept bounded in the flat state dict."""

    seen: dict[str, str] = field(default_factory=dict)  # url -> lastmod ("" when none)
    floor: str = ""  # lastmods at or before this were forgotten
    forgotten: dict[str, None] = field(default_factory=dict)  # fingerprints of undated URLs, oldest first
    sitemaps: dict[str, str] = field(default_factory=dict)  # child sitemap -> lastmod fully read
    validators: dict[str, str] = field(default_factory=dict)  # undated child -> "etag\nlast_modified"
    tries: dict[str, int] = field(default_factory=dict)  # url -> polls its page failed to download

    @classmethod
    def load(cls, state: dict[str, str]) -> Memory:
        packed = state.get("forgotten", "")
        width = len(_fingerprint(""))
        return cls(
            seen=_json_map(state.get("seen")),
            floor=state.get("floor", ""),
            forgotten=dict.fromkeys(packed[i : i + width] for i in range(0, len(packed), width)),
            sitemaps=_json_map(state.get("sitemaps")),
            validators=_json_map(state.get("validators")),
            tries={url: int(n) for url, n in _json_map(state.get("tries")).items() if n.isdecimal()},
        )

    def wants(self, entry: Entry) -> bool:
        """True when the URL is new, or its lastmod moved forward since it was seen."""
        if entry.url in self.seen:
            return entry.lastmod > self.seen[entry.url]
        if not entry.lastmod:
            return _fingerprint(entry.url) not in self.forgotten
        return not (self.floor and entry.lastmod <= self.floor)

    def record(self, entry: Entry) -> None:
        self.seen[entry.url] = max(entry.lastmod, self.seen.get(entry.url, ""))
        self.tries.pop(entry.url, None)

    def failed(self, entry: Entry) -> int:
        """Count one more failed poll for the entry's page; the count so far."""
        self.tries[entry.url] = self.tries.get(entry.url, 0) + 1
        return self.tries[entry.url]

    def dump(self) -> dict[str, str]:
        if len(self.seen) > MAX_SEEN:
            ordered = sorted(self.seen.items(), key=lambda item: item[1])
            forgotten, kept = ordered[: len(ordered) - MAX_SEEN], ordered[-MAX_SEEN:]
            self.floor = max([self.floor, *(lastmod for _, lastmod in forgotten)])
            self.forgotten.update((_fingerprint(url), None) for url, lastmod in forgotten if not lastmod)
            self.seen = dict(kept)
        state = {"seen": json.dumps(self.seen, separators=(",", ":"), sort_keys=True)}
        if self.floor:
            state["floor"] = self.floor
        if self.forgotten:
            state["forgotten"] = "".join(list(self.forgotten)[-MAX_FORGOTTEN:])
        for key, values in (("sitemaps", self.sitemaps), ("validators", self.validators), ("tries", self.tries)):
            if values:
                state[key] = json.dumps(values, separators=(",", ":"), sort_keys=True)
        return state

    def child_validators(self, url: str) -> tuple[str | None, str | None]:
        """The ETag and Last-Modified of the copy of an undated child that was fully read."""
        etag, _, last_modified = self.validators.get(url, "").partition("\n")
        return etag or None, last_modified or None

    def keep_only(self, children: set[str], wanted: set[str]) -> None:
        """Forget child sitemaps no index lists any more (daily sitemaps come and go), and the
        failures of pages no longer wanted."""
        self.sitemaps = {url: lastmod for url, lastmod in self.sitemaps.items() if url in children}
        self.validators = {url: pair for url, pair in self.validators.items() if url in children}
        self.tries = {url: count for url, count in self.tries.items() if url in wanted}


@dataclass
class _Crawl:
    """One poll's reading of the sitemap tree."""

    entries: list[Entry] = field(default_factory=list)
    children: dict[str, str] = field(default_factory=dict)  # child sitemap read -> its lastmod
    validators: dict[str, str] = field(default_factory=dict)  # undated child read -> its validators
    listed: set[str] = field(default_factory=set)  # every child the indexes list
    visited: set[str] = field(default_factory=set)  # sitemaps fetched (an index may list itself)
    undated: bool = False  # a child without lastmod: the index's 304 would not cover it
    incomplete: bool = False  # something was not read: do not let the next poll skip it


class SitemapSource(WebSource):
    type = "sitemap"
    settings_model = SitemapSourceSettings
    settings: SitemapSourceSettings

    def poll(self, state: dict[str, str]) -> PollResult:
        fetched = self.fetch_if_changed(state, accept=ACCEPT_XML)
        if fetched.not_modified:
            return PollResult(state=dict(state), not_modified=True)
        memory = Memory.load(state)
        result = PollResult(complete=False)
        crawl = _Crawl(visited={self.url, fetched.url})
        self._read(fetched, memory, crawl, result, depth=0)

        wanted = self._wanted(crawl.entries, memory, result)
        limit = self.settings.max_urls_per_poll
        if "seen" not in state:  # a new source: its newest articles fill the feeds, the rest stay unread
            for entry in wanted[limit:]:
                memory.record(entry)
            wanted = wanted[:limit]
        batch, later = wanted[:limit], wanted[limit:]
        unfinished = {entry.sitemap for entry in later} | self._take(batch, memory, result)
        result.backlog = bool(unfinished)  # entries left for the next polls, or to be tried again
        for child, lastmod in crawl.children.items():
            if child not in unfinished:
                memory.sitemaps[child] = lastmod
                if child in crawl.validators:
                    memory.validators[child] = crawl.validators[child]
        memory.keep_only(crawl.listed, {entry.url for entry in wanted})
        result.state = memory.dump()
        if not unfinished and not crawl.incomplete and not crawl.undated:
            result.state.update(validators(fetched))  # nothing left: an unchanged root may 304
        return result

    # --- reading the sitemap tree ----------------------------------------------------------------

    def _read(self, fetched: Fetched, memory: Memory, crawl: _Crawl, result: PollResult, depth: int) -> None:
        try:
            root = self._parse(fetched, result)
            kind = _localname(root)
            if kind == "urlset":
                crawl.entries.extend(self._urls(root, fetched.url))
            elif kind == "sitemapindex":
                self._read_index(root, fetched.url, memory, crawl, result, depth)
            else:
                raise self.error(f"not a sitemap: the root element is <{kind}>", fetched.url)
        except (ValueError, etree.LxmlError) as exc:  # what lxml makes of a badly broken document
            raise self.error(f"not a readable sitemap: {type(exc).__name__}: {exc}", fetched.url) from exc

    def _read_index(self, root: Any, url: str, memory: Memory, crawl: _Crawl, result: PollResult, depth: int) -> None:
        children = []
        for node in _children(root, "sitemap"):
            loc = _absolute(_text(node, "loc"), url)
            if loc:
                children.append((loc, _lastmod(_text(node, "lastmod"), self.site.timezone)))
        children.sort(key=lambda child: child[1], reverse=True)  # newest first
        crawl.listed.update(loc for loc, _ in children)
        for loc, lastmod in children:
            if loc in crawl.visited:
                continue  # read already this poll (an index may list itself, or a child twice)
            crawl.undated |= not lastmod
            if lastmod and memory.sitemaps.get(loc) == lastmod:
                continue  # unchanged since it was fully read
            if depth + 1 >= MAX_DEPTH or len(crawl.children) >= self.settings.max_sitemaps:
                crawl.incomplete = True
                message = f"sitemap index nesting or size is over the limit; {loc} left unread"
                result.errors.append(self.error(message, url))
                continue
            crawl.children[loc] = lastmod
            crawl.visited.add(loc)
            etag, last_modified = (None, None) if lastmod else memory.child_validators(loc)
            try:
                child = self.fetcher.get(loc, etag=etag, last_modified=last_modified, accept=ACCEPT_XML)
                if child.not_modified or (child.url != loc and child.url in crawl.visited):
                    continue  # unchanged since it was fully read, or redirected to one read already
                crawl.visited.add(child.url)
                if not lastmod:
                    crawl.validators[loc] = f"{child.etag or ''}\n{child.last_modified or ''}"
                self._read(child, memory, crawl, result, depth + 1)
            except SourceError as exc:
                crawl.incomplete = True
                crawl.children.pop(loc, None)
                result.errors.append(exc)

    def _parse(self, fetched: Fetched, result: PollResult) -> Any:
        """The document's root element; a broken one is salvaged when anything can be read."""
        data = xml_bytes(self._unpacked(fetched))
        strict = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
        try:
            return etree.fromstring(data, strict)
        except etree.XMLSyntaxError as exc:
            problem = str(exc)
        loose = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, recover=True)
        root = etree.fromstring(data, loose) if data.strip() else None
        listed = [] if root is None else _children(root, "url") + _children(root, "sitemap")
        if not any(_text(node, "loc") for node in listed):
            raise self.error(f"not a readable sitemap: {problem}", fetched.url)
        message = f"sitemap is malformed ({problem}); read what it could"
        result.errors.append(self.error(message, fetched.url))
        return root

    def _unpacked(self, fetched: Fetched) -> Fetched:
        """`sitemap.xml.gz` served as a file (not Content-Encoding), unpacked within the cap."""
        if not fetched.content.startswith(b"\x1f\x8b"):
            return fetched
        limit = self.settings.max_bytes
        try:
            data = gzip.GzipFile(fileobj=io.BytesIO(fetched.content)).read(limit + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise self.error(f"broken gzip file: {exc}", fetched.url) from None
        if len(data) > limit:
            raise self.error(f"too large: unpacks to more than {limit} bytes", fetched.url)
        return dataclasses.replace(fetched, content=data, encoding=charsets.detect(data))

    def _urls(self, root: Any, sitemap: str) -> list[Entry]:
        tz = self.site.timezone
        entries = []
        for node in _children(root, "url"):
            loc = _absolute(_text(node, "loc"), sitemap)
            if not loc:
                continue
            news = _first_child(node, "news")
            image = _first_child(node, "image")
            keywords = _text(news, "keywords")
            language = _text(_first_child(news, "publication"), "language")
            entries.append(
                Entry(
                    url=loc,
                    lastmod=_lastmod(_text(node, "lastmod"), tz),
                    title=_text(news, "title"),
                    published=_text(news, "publication_date"),
                    keywords=[k.strip() for k in keywords.split(",") if k.strip()],
                    image=_absolute(_text(image, "loc"), loc),
                    language=language or None,
                    sitemap=sitemap,
                )
            )
        return entries

    def _wanted(self, entries: list[Entry], memory: Memory, result: PollResult) -> list[Entry]:
        """New or changed article URLs on the source's site, one entry per URL, newest lastmod
        first. URLs on other sites are reported and left out (the sitemap protocol keeps a
        sitemap's URLs on its own host), whether or not pages are fetched."""
        include = re.compile(self.settings.include) if self.settings.include else None
        exclude = re.compile(self.settings.exclude) if self.settings.exclude else None
        newest: dict[str, Entry] = {}
        for entry in entries:
            if include and not include.search(entry.url):
                continue
            if exclude and exclude.search(entry.url):
                continue
            if entry.url not in newest or entry.lastmod > newest[entry.url].lastmod:
                newest[entry.url] = entry
        wanted = [entry for entry in newest.values() if memory.wants(entry)]
        own = set(self.own_links([entry.url for entry in wanted], result))
        wanted = [entry for entry in wanted if entry.url in own]
        return sorted(wanted, key=lambda entry: entry.lastmod or entry.published, reverse=True)

    # --- one article ---------------------------------------------------------------------------

    def _take(self, batch: list[Entry], memory: Memory, result: PollResult) -> set[str]:
        """Draft the article of each entry; the sitemaps whose entries must be tried again."""
        unfinished = set()
        for entry in batch:
            try:
                result.drafts.append(self._draft(entry))
            except ValueError as exc:  # no article there: not read again until its lastmod moves
                result.errors.append(self.error(str(exc), entry.url))
            except SourceError as exc:  # cannot be read now: tried again on the next polls
                result.errors.append(exc)
                if memory.failed(entry) < MAX_TRIES:
                    unfinished.add(entry.sitemap)
                    continue
                message = f"gave up after {MAX_TRIES} failed polls; read again when its lastmod changes"
                result.errors.append(self.error(message, entry.url))
            memory.record(entry)
        return unfinished

    def _draft(self, entry: Entry) -> Draft:
        """The article behind one sitemap URL: SourceError when it cannot be had now, ValueError
        when there is none."""
        if not self.settings.fetch_pages:
            if not entry.title:
                raise ValueError("no news:title in the sitemap and fetch_pages is off; skipped")
            return self._from_sitemap(entry)
        page = self.fetcher.get(entry.url, accept=ACCEPT_HTML)
        try:
            draft = self.extract_page(page, self.settings.selectors)
        except ValueError:
            if entry.title:  # the page defeats extraction; the news sitemap still tells enough
                return self._from_sitemap(entry)
            raise
        return dataclasses.replace(
            draft,
            title=draft.title or entry.title,
            image=draft.image or entry.image,
            tags=list(dict.fromkeys([*draft.tags, *entry.keywords])),
            categories=self.categories(draft.categories),
            language=draft.language or entry.language,
            published=draft.published or entry.published or None,
            updated=draft.updated or entry.lastmod or None,
        )

    def _from_sitemap(self, entry: Entry) -> Draft:
        return Draft(
            url=entry.url,
            title=entry.title,
            image=entry.image,
            tags=entry.keywords,
            categories=self.categories([]),
            language=entry.language,
            published=entry.published or None,
            updated=entry.lastmod or None,
        )


# --- small XML helpers (sitemaps come with or without namespaces) -------------------------------


def _children(node: Any, name: str) -> list[Any]:
    return [c for c in node if isinstance(c.tag, str) and _localname(c) == name]


def _localname(node: Any) -> str:
    """The tag without its namespace: `{uri}news`, or `news:news` when a recovered document used
    a prefix it never declared (lxml's QName refuses that one)."""
    tag: str = node.tag
    return tag.rpartition("}")[2].rpartition(":")[2]


def _first_child(node: Any, name: str) -> Any:
    """The first child element called `name` (any namespace), or None; None in, None out."""
    found = _children(node, name) if node is not None else []
    return found[0] if found else None


def _text(node: Any, name: str) -> str:
    child = _first_child(node, name)
    return (child.text or "").strip() if child is not None else ""


def _absolute(url: str, base: str) -> str | None:
    joined = absolute(url, base)
    return joined if joined and is_http_url(joined) else None


def _lastmod(text: str, timezone: str) -> str:
    """A W3C datetime as comparable UTC text; "" when absent or unreadable."""
    when = parse_date(text, zone(timezone)) if text else None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


def _fingerprint(url: str) -> str:
    """A URL in 11 characters (64 bits): enough to tell a forgotten URL from a new one."""
    digest = hashlib.blake2b(url.encode("utf-8"), digest_size=8).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _json_map(text: str | None) -> dict[str, str]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
