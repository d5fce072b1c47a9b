"""News that exist only as HTML pages: a listing page links to them, each page is extracted.

A poll costs one request when nothing changed: a 304 for the listing, or the same links showing
the same texts (SharePoint sends no validators and changes its bytes on every request, so links
and texts are what is compared). Only the article pages that are new, or whose entry on the
listing changed (an edited title; the entry is the text of what `link_selector` matches, so
matching whole items covers dates and summaries too), are fetched, conditionally when the page
gave validators, and extracted into Drafts; one that extracts as before is not a Draft again.
A broken article page is reported with its URL and retried on the next polls; the others go on.
A listing shows only the newest articles, so a poll is never complete.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, field_validator

from distributor.errors import SourceError
from distributor.extract import check_css, check_selectors, extract_links, listing_entries
from distributor.fetch import Fetched
from distributor.normalize import Draft
from distributor.sources.base import PollResult
from distributor.sources.web import WebSource, WebSourceSettings, validators

ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
MAX_REMEMBERED = 2000  # article URLs (the listing's first) whose entry and page validators are kept
MAX_TRIES = 5  # polls an article page may fail before it waits for its listing entry to change


class HtmlSourceSettings(WebSourceSettings):
    link_selector: str  # CSS for the article links (or the items holding them) on the listing
    selectors: dict[str, str] = {}  # CSS overriding extraction: title, published, updated, ...
    pagination_selector: str | None = None  # CSS for the listing's "next page" link
    max_pages: int = Field(default=1, ge=1, le=100)
    max_articles_per_poll: int = Field(default=30, ge=1, le=1000)

    @field_validator("link_selector", "pagination_selector")
    @classmethod
    def _css(cls, value: str | None) -> str | None:
        return None if value is None else check_css(value)

    @field_validator("selectors")
    @classmethod
    def _selectors(cls, value: dict[str, str]) -> dict[str, str]:
        return check_selectors(value)


@dataclass
class _Known:
    """What the last polls learnt about one article URL."""

    entry: str  # digest of the text the listing shows for it
    article: str = ""  # digest of the extracted article; "" until one was read
    etag: str | None = None
    last_modified: str | None = None
    tries: int = 0  # failed attempts since the last success

    def dump(self) -> list[Any]:
        return [self.entry, self.article, self.etag, self.last_modified, self.tries]

    @classmethod
    def load(cls, value: Any) -> _Known:
        entry, article, etag, last_modified, tries = value
        return cls(str(entry), str(article), etag, last_modified, int(tries))


class HtmlSource(WebSource):
    type = "html"
    # Annotated: a required key makes the model's constructor differ from its base's.
    settings_model: ClassVar[builtins.type[WebSourceSettings]] = HtmlSourceSettings
    settings: HtmlSourceSettings

    def poll(self, state: dict[str, str]) -> PollResult:
        listing = self.fetch_if_changed(state, accept=ACCEPT)
        known = _load(state.get("articles"))
        result = PollResult(complete=False, state=dict(state))
        result.state.update(validators(listing))
        entries = {} if listing.not_modified else self._entries(listing, result)
        due = [url for url, entry in entries.items() if url not in known or known[url].entry != entry]
        for url, entry in entries.items():  # listed URLs move to the end: the newest are kept
            known[url] = known.pop(url) if url in known else _Known(entry)
            known[url].entry = entry
        retries = [url for url, item in known.items() if item.tries and url not in due]
        todo = (due + retries)[: self.settings.max_articles_per_poll]
        for url in todo:
            self._read(url, known, result)
        for url in due[len(todo) :]:  # over this poll's budget: read by the next polls
            known[url].tries = max(known[url].tries, 1)
        result.backlog = any(item.tries for item in known.values())  # over the budget, or failed
        result.not_modified = not todo
        result.state["articles"] = _dump(known)
        return result

    def _entries(self, first: Fetched, result: PollResult) -> dict[str, str]:
        """Article URL -> digest of its listing entry, over up to `max_pages` listing pages."""
        settings = self.settings
        html, page_url = first.text(), first.url
        found = listing_entries(html, page_url, settings.link_selector)
        if not found:
            message = f"no links on the listing match link_selector {settings.link_selector!r}"
            raise self.error(message, page_url)
        seen_pages = {page_url}
        for _ in range(settings.max_pages - 1 if settings.pagination_selector else 0):
            following = extract_links(html, page_url, settings.pagination_selector or "")
            following = [url for url in following if url not in seen_pages]
            if not following:
                break
            try:
                page = self.fetcher.get(following[0], accept=ACCEPT)
            except SourceError as exc:
                result.errors.append(exc)  # the pages read so far still count
                break
            seen_pages.update((following[0], page.url))
            html, page_url = page.text(), page.url
            for url, text in listing_entries(html, page_url, settings.link_selector).items():
                found.setdefault(url, text)
        own = self.own_links(list(found), result)  # links to other sites are reported, not read
        # Links beyond what is remembered are left out: forgotten, they would be new on every poll.
        return {url: _digest(found[url]) for url in own[:MAX_REMEMBERED]}

    def _read(self, url: str, known: dict[str, _Known], result: PollResult) -> None:
        """Fetch and extract one article page; a failure is reported and counted, never raised."""
        previous = known[url]
        try:
            draft, article, fetched = self._article(url, previous)
        except SourceError as exc:
            result.errors.append(exc)
            previous.tries += 1
            if previous.tries >= MAX_TRIES:
                previous.tries = 0
                message = f"gave up after {MAX_TRIES} failed polls; read again when its listing entry changes"
                result.errors.append(self.error(message, url))
            return
        known[url] = _Known(previous.entry, article or previous.article, fetched.etag, fetched.last_modified)
        if draft is not None and article != previous.article:
            result.drafts.append(draft)

    def _article(self, url: str, previous: _Known) -> tuple[Draft | None, str, Fetched]:
        """The page's Draft and its digest; (None, "", 304 answer) when the page did not change."""
        fetched = self.fetcher.get(url, etag=previous.etag, last_modified=previous.last_modified, accept=ACCEPT)
        if fetched.not_modified:
            return None, "", fetched
        try:
            draft = self.extract_page(fetched, self.settings.selectors)
        except ValueError as exc:
            raise self.error(str(exc), url) from exc
        draft.categories = self.categories(draft.categories)
        return draft, _digest(repr(sorted(vars(draft).items()))), fetched


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _load(raw: str | None) -> dict[str, _Known]:
    """The remembered articles; a damaged state is forgotten rather than failing every poll."""
    try:
        data = json.loads(raw or "{}")
        return {str(url): _Known.load(value) for url, value in data.items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _dump(known: dict[str, _Known]) -> str:
    newest = list(known.items())[-MAX_REMEMBERED:]  # the listing's links were moved to the end
    return json.dumps({url: item.dump() for url, item in newest}, ensure_ascii=False)
