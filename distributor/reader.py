"""Read one article on demand (CLI `publish` and `preview`): a file, a page URL, or a stored id."""

from __future__ import annotations

import re
from pathlib import Path

from distributor.context import Context
from distributor.models import Article
from distributor.normalize import Draft
from distributor.settings import SourceSettings
from distributor.sources.directory import DirectorySource
from distributor.urls import article_id, is_http_url

_ID = re.compile(r"^[0-9a-f]{16}$")


class NotFound(ValueError):
    """No such file or stored article (a ValueError still): the CLI exits with its not-found code."""


def read_one(ctx: Context, path_or_url: str) -> Draft:
    if is_http_url(path_or_url):
        from distributor.extract import extract_article
        from distributor.fetch import Fetcher

        fetched = Fetcher(source="cli").get(path_or_url)
        return extract_article(fetched.text(), fetched.url, selectors=None, tz=ctx.tz)
    path = Path(path_or_url)
    if not path.is_file():
        raise NotFound("not a file or an http(s) URL")
    reader = DirectorySource(SourceSettings(name="cli", type="directory", path=str(path.parent)), ctx.settings.site)
    return reader.read(path)


def find_article(ctx: Context, reference: str) -> Article:
    """A stored article by id or URL; otherwise read and normalise it (nothing is stored)."""
    from distributor.pipeline import to_article

    if _ID.match(reference):
        found = ctx.store.get(reference)
        if found is None:
            raise NotFound("no stored article with this id")
        return found
    if is_http_url(reference):
        found = ctx.store.get(article_id(reference))
        if found is not None:
            return found
    return to_article(ctx, read_one(ctx, reference), "preview")
