"""Source registry: adding a source type is one module plus one line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from distributor.registry import load

if TYPE_CHECKING:
    from distributor.sources.base import Source

SOURCES: dict[str, str] = {
    "directory": "distributor.sources.directory:DirectorySource",
    "feed": "distributor.sources.feed:FeedSource",
    "html": "distributor.sources.html:HtmlSource",
    "sitemap": "distributor.sources.sitemap:SitemapSource",
    "wordpress": "distributor.sources.wordpress:WordPressSource",
    "push": "distributor.sources.push:PushSource",
}


def source_class(kind: str) -> type[Source]:
    cls: type[Source] = load(SOURCES[kind])
    return cls
