"""Layer 2: what the page declares for machines.

JSON-LD, Open Graph / `article:` meta tags, microdata, `<time datetime>`, in that order, then the
page's `<link rel=canonical>` and `<html lang>`.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from urllib.parse import urlsplit

from lxml import html as lxml_html

from distributor import text as textlib
from distributor.dates import parse_date
from distributor.extract.fields import Fields, unique
from distributor.extract.jsonld import json_ld_articles, ld_list, ld_names, ld_text, ld_url
from distributor.extract.layout import Layout
from distributor.urls import absolute, is_http_url


def from_declarations(found: Fields, page: Layout, tz: tzinfo) -> None:
    root = page.root
    for item in json_ld_articles(root):
        found.offer(
            title=textlib.clean_text(ld_text(item.get("headline") or item.get("name"))),
            published=parse_date(ld_text(item.get("datePublished")), tz),
            updated=parse_date(ld_text(item.get("dateModified")), tz),
            summary=textlib.clean_text(ld_text(item.get("description"))),
            image=ld_url(item.get("image") or item.get("thumbnailUrl")),
            author=", ".join(ld_names(item.get("author"))),
            categories=ld_list(item.get("articleSection")),
            tags=ld_list(item.get("keywords")),
        )
    meta = _meta(root)

    def one(*names: str) -> str:
        return next((meta[n][0] for n in names if meta.get(n)), "")

    found.offer(
        title=one("og:title", "twitter:title"),
        published=parse_date(one("article:published_time", "datepublished", "pubdate"), tz),
        updated=parse_date(one("article:modified_time", "og:updated_time", "datemodified"), tz),
        summary=one("og:description", "twitter:description"),  # plain description: site-wide
        image=one("og:image", "og:image:url", "og:image:secure_url", "twitter:image"),
        author=one("author", "article:author"),
        categories=unique(meta.get("article:section", [])),
        tags=unique(tag for value in meta.get("article:tag", []) for tag in value.split(",")),
    )
    found.offer(
        title=_itemprop(root, "headline"),
        published=parse_date(_itemprop(root, "datePublished"), tz),
        updated=parse_date(_itemprop(root, "dateModified"), tz),
        author=_itemprop(root, "author"),
    )
    times = (t for t in root.iter("time") if t.get("datetime") and t not in page.chrome)
    found.offer(published=parse_date(next(times, root).get("datetime"), tz))


def _meta(root: lxml_html.HtmlElement) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for tag in root.iter("meta"):
        name = (tag.get("property") or tag.get("name") or tag.get("itemprop") or "").strip().lower()
        content = textlib.clean_text(tag.get("content"))
        if name and content:
            values.setdefault(name, []).append(content)
    return values


def _itemprop(root: lxml_html.HtmlElement, name: str) -> str:
    for node in root.xpath("//*[@itemprop=$name]", name=name):
        if node.tag == "meta":
            continue  # read with the other meta tags
        value = node.get("datetime") or node.get("content") or node.text_content()
        if value and value.strip():
            return textlib.clean_text(value)
    return ""


def canonical(root: lxml_html.HtmlElement, url: str) -> str | None:
    """The page's `<link rel=canonical>`, but not one to a home page from another page (a
    template's mistake that would make every article of the site one article)."""
    for link in root.xpath("//link[@href]"):
        if "canonical" in (link.get("rel") or "").lower().split():
            target = absolute(link.get("href"), url)
            if not target or not is_http_url(target) or (_is_home(target) and not _is_home(url)):
                return None
            return target
    return None


def _is_home(url: str) -> bool:
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


def language(root: lxml_html.HtmlElement) -> str | None:
    lang = (root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang") or "").strip()
    primary = re.split(r"[-_]", lang, maxsplit=1)[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None
