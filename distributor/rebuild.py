"""Feed rebuilding: which feeds exist, rendering them in every format, storing and publishing the
bytes (Redis for the web processes, atomic files for a static server), and WebSub pings."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from distributor import feedset
from distributor.context import Context
from distributor.feeds.build import FORMATS, FeedSpec, feed_url, render_all

if TYPE_CHECKING:
    from distributor.pipeline import Dispatcher


def feed_meta(definition: feedset.FeedDef) -> dict[str, object]:
    return {
        "title": definition.title,
        "description": definition.description,
        "limit": definition.limit,
        "ttl": definition.ttl,
        "hubs": list(definition.hubs),
        "category": definition.category,
    }


def register_configured_feeds(ctx: Context) -> list[str]:
    """Configured feeds exist (and are served) even before their first article."""
    names = []
    for definition in feedset.configured(ctx.settings):
        ctx.store.register_feed(definition.name, feed_meta(definition))
        names.append(definition.name)
    return names


def spec_for(ctx: Context, name: str, meta: dict[str, object]) -> FeedSpec:
    site = ctx.settings.site
    return FeedSpec(
        name=name,
        title=str(meta.get("title") or site.title),
        description=str(meta.get("description") or site.title),
        self_url="",
        base_url=site.public_url.rstrip("/"),
        site_url=site.url,
        language=site.language,
        ttl=int(str(meta.get("ttl") or 15)),
        hubs=tuple(str(h) for h in meta.get("hubs") or ()),  # type: ignore[attr-defined]
        image=site.logo,
        author=site.author or site.title,
        timezone=site.timezone,
    )


_render_lock = threading.Lock()  # feedgen switches the process-wide locale while it formats dates


def rebuild_feeds(ctx: Context, names: Iterable[str], dispatch: Dispatcher | None = None) -> list[str]:
    """Re-render the named feeds in every format; return those whose bytes changed."""
    metas = ctx.store.feed_meta()
    changed = []
    for name in names:
        meta = metas.get(name)
        if meta is None:
            continue
        # One rebuild of a feed at a time across all workers: a slow rebuild that read older
        # articles must not overwrite a newer rendering.
        with ctx.redis.lock(ctx.keys.lock(f"feed:{name}"), timeout=120, blocking_timeout=120):
            if _rebuild_one(ctx, name, meta):
                changed.append(name)
                spec = spec_for(ctx, name, meta)
                if spec.hubs and dispatch is not None:
                    dispatch.ping(list(spec.hubs), [feed_url(spec, fmt) for fmt in FORMATS])
    return changed


def _rebuild_one(ctx: Context, name: str, meta: dict[str, object]) -> bool:
    spec = spec_for(ctx, name, meta)
    articles = ctx.store.feed_articles(name, int(str(meta.get("limit") or 50)))
    modified = max((a.updated for a in articles), default=datetime(2000, 1, 1, tzinfo=UTC))
    with _render_lock:
        rendered = render_all(spec, articles)
    feed_changed = False
    for fmt, body in rendered.items():
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        if ctx.store.render_etag(name, fmt) == etag:
            continue
        ctx.store.save_render(name, fmt, body, etag, modified)
        write_public(ctx.settings.public_dir / "feeds" / f"{name}.{FORMATS[fmt][1]}", body)
        feed_changed = True
    if feed_changed:
        ctx.redis.publish(ctx.keys.feed_updates(), name)
    return feed_changed


def write_public(path: Path, body: bytes) -> None:
    """Atomic write: a static server never serves a half-written feed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(body)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
