"""What every source that reads the web shares: settings for the fetcher, conditional polling,
extracting the article on a fetched page, and turning a fetched XML document into clean UTF-8
bytes for a parser.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from distributor.dates import zone
from distributor.fetch import Fetched, Fetcher
from distributor.normalize import Draft
from distributor.settings import Duration, HttpUrlStr, SourceSettings
from distributor.sources.base import PollResult, Source
from distributor.text import strip_illegal_xml
from distributor.urls import parse_allowed_host

MAX_REFUSALS_NAMED = 10  # links to other sites named one by one in a poll's errors
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_CHARACTER_REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")


def _check_selectors(value: dict[str, str]) -> dict[str, str]:
    from distributor.extract import check_selectors  # imported late: it loads trafilatura

    return check_selectors(value)


# CSS selectors overriding article extraction (title, published, content, image, category...).
Selectors = Annotated[dict[str, str], AfterValidator(_check_selectors)]


class WebSourceSettings(SourceSettings):
    """A source with a required http(s) `url` and the knobs of its fetcher."""

    url: HttpUrlStr
    timeout: Duration = 20
    retries: int = Field(default=2, ge=0, le=10)
    politeness: float = Field(default=1.0, ge=0)  # seconds between requests to one host
    max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Hosts besides the source's own whose links (listing links, sitemap URLs, redirects) it follows.
    allowed_hosts: list[str] = []

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_allowed_host(entry)  # ValueError naming the entry
        return [entry.strip().lower() for entry in value]


class WebSource(Source):
    settings_model = WebSourceSettings
    settings: WebSourceSettings

    @property
    def url(self) -> str:
        return self.settings.url

    @cached_property
    def fetcher(self) -> Fetcher:
        timeout = self.settings.timeout
        return Fetcher(
            source=self.name,
            max_bytes=self.settings.max_bytes,
            timeout=(min(5.0, timeout), timeout),
            retries=self.settings.retries,
            politeness=self.settings.politeness,
            home=self.url,
            allowed_hosts=self.settings.allowed_hosts,
        )

    def fetch_if_changed(self, state: dict[str, str], accept: str | None = None) -> Fetched:
        """GET the source URL with the validators the last poll stored (a 304 costs one request)."""
        return self.fetcher.get(
            self.url,
            etag=state.get("etag"),
            last_modified=state.get("last_modified"),
            accept=accept,
            linked=False,
        )

    def own_links(self, urls: list[str], result: PollResult) -> list[str]:
        """The URLs, found in the source's content, that it may follow; each other one is reported
        (naming it, the first `MAX_REFUSALS_NAMED` of a poll) and left alone."""
        kept: list[str] = []
        refused: list[str] = []
        for url in urls:
            (kept if self.fetcher.permits(url) else refused).append(url)
        for url in refused[:MAX_REFUSALS_NAMED]:
            result.errors.append(self.fetcher.refused(url))
        if len(refused) > MAX_REFUSALS_NAMED:
            more = len(refused) - MAX_REFUSALS_NAMED
            message = f"{more} more links to other sites not fetched (add their hosts to allowed_hosts to follow them)"
            result.errors.append(self.error(message))
        return kept

    def extract_page(self, page: Fetched, selectors: dict[str, str]) -> Draft:
        """The article on a fetched page, read with `selectors` in the site's timezone.

        ValueError when the page holds no article, or breaks the extraction in any other way (one
        hostile page must not stop the others): each source decides what that means for it.
        """
        from distributor.extract import extract_article  # imported late: it loads trafilatura

        try:
            return extract_article(page.text(), page.url, selectors=selectors or None, tz=zone(self.site.timezone))
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(f"extraction failed: {type(exc).__name__}: {exc}") from exc

    def categories(self, found: list[str]) -> list[str]:
        """The item's own categories, else the source's configured `category`."""
        if found or not self.settings.category:
            return found
        return [self.settings.category]


def validators(fetched: Fetched) -> dict[str, str]:
    """The state a conditional GET needs next time."""
    state = {}
    if fetched.etag:
        state["etag"] = fetched.etag
    if fetched.last_modified:
        state["last_modified"] = fetched.last_modified
    return state


def xml_bytes(fetched: Fetched) -> bytes:
    """The document as UTF-8 bytes declaring UTF-8, without characters XML forbids.

    The fetcher already found the real charset (header, BOM, declaration or detection), so the
    parser must not trust a declaration that may be wrong; stray control characters, common in
    CMS output, would otherwise make a whole feed unreadable.
    """
    text = _CHARACTER_REFERENCE.sub(_legal_reference, strip_illegal_xml(fetched.text()))
    text = _XML_DECLARATION.sub('<?xml version="1.0" encoding="utf-8"?>', text, count=1)
    return text.encode("utf-8")


def _legal_reference(match: re.Match[str]) -> str:
    """A character reference, or "" when it names a character XML forbids (`&#xD800;`, `&#1;`):
    parsers turn those into errors or into bytes that are no UTF-8."""
    code = int(match[1], 16) if match[1] else int(match[2])
    return match[0] if code <= 0x10FFFF and strip_illegal_xml(chr(code)) else ""


def json_body(fetched: Fetched) -> Any:
    """The body as JSON; ValueError when it is not JSON, or nests deeper than Python recurses."""
    try:
        return json.loads(fetched.text())
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def first(values: Any) -> Any:
    """The first item of a list-ish value, or None."""
    if isinstance(values, list | tuple) and values:
        return values[0]
    return None


def listed(value: Any) -> list[Any]:
    """A JSON value that should be a list, or [] when it is not (hostile or broken APIs)."""
    return list(value) if isinstance(value, list | tuple) else []
