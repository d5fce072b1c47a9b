"""Which feeds exist and which articles belong to each: configured feeds plus per-category feeds."""

from __future__ import annotations

from dataclasses import dataclass

from distributor.models import Article
from distributor.settings import FeedSettings, Settings
from distributor.text import slugify


@dataclass(frozen=True)
class FeedDef:
    """One concrete feed: a configured one, or a category feed derived from it."""

    name: str
    title: str
    description: str
    limit: int
    ttl: int
    hubs: tuple[str, ...]
    parent: FeedSettings
    category: str | None = None  # set on per-category feeds

    def matches(self, article: Article) -> bool:
        filters = self.parent.filters
        if filters.language and article.language != filters.language:
            return False
        if filters.sources and article.source not in filters.sources:
            return False
        if filters.categories and not set(filters.categories) & set(article.categories):
            return False
        if filters.tags and not set(filters.tags) & set(article.tags):
            return False
        return self.category is None or self.category in article.categories


def configured(settings: Settings) -> list[FeedDef]:
    return [
        FeedDef(
            name=feed.name,
            title=feed.title or settings.site.title,
            description=feed.description or settings.site.description or settings.site.title,
            limit=feed.limit,
            ttl=feed.ttl,
            hubs=tuple(feed.hubs),
            parent=feed,
        )
        for feed in settings.feeds
    ]


def category_feed(settings: Settings, parent: FeedSettings, category: str) -> FeedDef:
    """'Tin Tức Sự Kiện' -> feed 'tin-tuc-su-kien' (stable, diacritics dropped)."""
    return FeedDef(
        name=slugify(category) or "category",
        title=f"{parent.title or settings.site.title} – {category}",
        description=f"{settings.site.title}: {category}",
        limit=parent.limit,
        ttl=parent.ttl,
        hubs=tuple(parent.hubs),
        parent=parent,
        category=category,
    )


def feeds_for(settings: Settings, article: Article) -> list[FeedDef]:
    """Every feed (configured or category) that should list `article`."""
    found: dict[str, FeedDef] = {}
    for feed in configured(settings):
        if not feed.matches(article):
            continue
        found.setdefault(feed.name, feed)
        if feed.parent.per_category:
            for category in article.categories:
                derived = category_feed(settings, feed.parent, category)
                if derived.matches(article):
                    found.setdefault(derived.name, derived)
    return list(found.values())
