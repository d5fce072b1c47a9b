"""Article extraction for the `html` and `sitemap` sources: one article out of one HTML page.

Each field is taken from the most trustworthy layer that has it:
1. the source's own CSS `selectors` (the operator knows the site): `selectors.py`;
2. what the page declares for machines: JSON-LD, Open Graph / `article:` meta tags, microdata,
   `<time datetime>`, `<link rel=canonical>`: `meta.py`, `jsonld.py`;
3. what the page shows people: the date line ("Thứ 3, Ngày 13/07/2021, 21:00") and the heading
   next to it, the breadcrumb. Government portals on SharePoint declare nothing, so this layer is
   what finds their title, date and category: `portal.py`;
4. plain fallbacks: the page's `<h1>` and `<title>`: `layout.py`.

The body comes from trafilatura, after layout tables are turned into divs (`body.py`), and is
then cleaned of the portal controls that survive it (`tidy.py`). `article.py` runs the layers;
`links.py` reads listing pages. This module only names the public API.
"""

from __future__ import annotations

from distributor.extract.article import extract_article
from distributor.extract.jsonld import ARTICLE_TYPES
from distributor.extract.links import extract_links, listing_entries
from distributor.extract.selectors import SELECTOR_KEYS, check_css, check_selectors

__all__ = [
    "ARTICLE_TYPES",
    "SELECTOR_KEYS",
    "check_css",
    "check_selectors",
    "extract_article",
    "extract_links",
    "listing_entries",
]
