"""The article store and feed indexes in Redis (key names come from `distributor.keys`)."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import redis

from distributor.keys import Keys
from distributor.models import Article

if TYPE_CHECKING:
    from distributor.journal import Journal

Change = Literal["new", "updated", "unchanged"]


def compress(body: bytes) -> bytes:
    """gzip with no timestamp in the header: the same body always gives the same bytes."""
    return gzip.compress(body, 6, mtime=0)


# Compare-and-set of the content hash, so two workers ingesting the same article agree on "new".
_UPSERT = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old == ARGV[2] then return 'unchanged' end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[5])
if old then return 'updated' end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 'new'
"""


# One slice of the search index: HSCAN from ARGV[1] (COUNT ARGV[5]), keeping the entries whose text
# holds ARGV[2] (casefolded), whose source is ARGV[3] and whose categories include ARGV[4] (empty:
# any), among the published articles (KEYS[2]). Returns {next cursor, id, score, id, score, ...}.
_SEARCH = """
local found = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[5])
local out = {found[1]}
local entries = found[2]
for i = 1, #entries, 2 do
  local title, source, categories = string.match(entries[i + 1], '^(.-)\\31(.-)\\31(.*)$')
  if title and (ARGV[2] == '' or string.find(title, ARGV[2], 1, true))
     and (ARGV[3] == '' or source == ARGV[3])
     and (ARGV[4] == '' or string.find('|' .. categories .. '|', '|' .. ARGV[4] .. '|', 1, true)) then
    local score = redis.call('ZSCORE', KEYS[2], entries[i])
    if score then
      out[#out + 1] = entries[i]
      out[#out + 1] = score
    end
  end
end
return out
"""
SEARCH_SLICE = 2000  # index entries one search call looks at: Redis is never held for long


def search_text(article: Article) -> str:
    """The article's entry in the search index (see `Keys.article_search`)."""
    categories = "|".join(c.casefold().replace("|", " ") for c in article.categories)
    return "\x1f".join((article.title.casefold().replace("\x1f", " "), article.source, categories))


class Store:
    def __init__(self, client: redis.Redis, binary: redis.Redis, keys: Keys, journal: Journal | None = None) -> None:
        self.redis = client
        self.binary = binary
        self.keys = keys
        self.journal = journal  # what outlives Redis (see distributor.journal)
        self._upsert = client.register_script(_UPSERT)
        self._search = client.register_script(_SEARCH)

    # --- articles --------------------------------------------------------------------------------

    def upsert(self, article: Article) -> Change:
        result = self._upsert(
            keys=[
                self.keys.article(article.id),
                self.keys.article_hash(),
                self.keys.fanout_pending(),
                self.keys.article_search(),
            ],
            args=[article.id, article.content_hash(), article.model_dump_json(), time.time(), search_text(article)],
        )
        return result  # type: ignore[no-any-return]

    def fanout_done(self, article_id: str) -> None:
        """The new article's fan-out was decided (deliveries created, or none by the rules)."""
        self.redis.zrem(self.keys.fanout_pending(), article_id)

    def fanout_overdue(self, grace: float, limit: int = 200) -> list[str]:
        """New articles whose fan-out a crashed worker left undecided for longer than `grace`."""
        key = self.keys.fanout_pending()
        return list(self.redis.zrangebyscore(key, "-inf", time.time() - grace, start=0, num=limit))

    def get(self, article_id: str) -> Article | None:
        raw = self.redis.get(self.keys.article(article_id))
        return Article.model_validate_json(raw) if raw else None

    def get_many(self, article_ids: Iterable[str]) -> list[Article]:
        ids = list(article_ids)
        if not ids:
            return []
        raws = self.redis.mget([self.keys.article(i) for i in ids])
        return [Article.model_validate_json(raw) for raw in raws if raw]

    def publish(self, article: Article) -> None:
        """List the article among the published ones (after its publish time has come)."""
        self.redis.zadd(self.keys.articles_by_time(), {article.id: article.published.timestamp()})

    def is_published(self, article_id: str) -> bool:
        return self.redis.zscore(self.keys.articles_by_time(), article_id) is not None

    def remove(self, article_id: str) -> None:
        """Unpublish: the article leaves listings; its delivery records and share counts stay."""
        pipe = self.redis.pipeline()
        pipe.zrem(self.keys.articles_by_time(), article_id)
        pipe.delete(self.keys.article(article_id))
        pipe.hdel(self.keys.article_hash(), article_id)
        pipe.hdel(self.keys.article_search(), article_id)
        pipe.execute()

    def search(self, text: str = "", source: str = "", category: str = "") -> list[str]:
        """Ids of every published article whose title holds `text` (any case), from `source` and in
        `category` (empty: any), newest first: the whole archive, read a slice at a time."""
        self._index_missing()
        found: list[tuple[float, str]] = []
        cursor = "0"
        args = [text.casefold(), source, category.casefold()]
        while True:
            cursor, *flat = self._search(
                keys=[self.keys.article_search(), self.keys.articles_by_time()], args=[cursor, *args, SEARCH_SLICE]
            )
            found += [(float(score), article_id) for article_id, score in zip(flat[::2], flat[1::2], strict=True)]
            if str(cursor) == "0":
                break
        return [article_id for _, article_id in sorted(found, reverse=True)]

    def _index_missing(self, page: int = 500) -> None:
        """Index the articles stored before the search index existed (once, after an upgrade)."""
        if self.redis.hlen(self.keys.article_search()) >= self.count():
            return
        ids = self.redis.zrange(self.keys.articles_by_time(), 0, -1)
        for start in range(0, len(ids), page):
            articles = self.get_many(ids[start : start + page])
            if articles:
                self.redis.hset(self.keys.article_search(), mapping={a.id: search_text(a) for a in articles})

    def newest(self, offset: int = 0, limit: int = 50) -> list[Article]:
        ids = self.redis.zrevrange(self.keys.articles_by_time(), offset, offset + limit - 1)
        return self.get_many(ids)

    def published_since(self, moment: float, offset: int = 0, limit: int = 50) -> list[Article]:
        """Articles published at or after `moment` (unix time), newest first, a page at a time."""
        ids = self.redis.zrevrangebyscore(self.keys.articles_by_time(), "+inf", moment, start=offset, num=limit)
        return self.get_many(ids)

    def ids_published_since(self, moment: float) -> list[str]:
        """The ids (only) of every article published at or after `moment`, newest first."""
        return list(self.redis.zrevrangebyscore(self.keys.articles_by_time(), "+inf", moment))

    def count(self) -> int:
        return int(self.redis.zcard(self.keys.articles_by_time()))

    # --- sources ---------------------------------------------------------------------------------

    def source_state(self, source: str) -> dict[str, str]:
        return dict(self.redis.hgetall(self.keys.source_state(source)))

    def save_source_state(self, source: str, state: dict[str, str]) -> None:
        key = self.keys.source_state(source)
        pipe = self.redis.pipeline()
        pipe.delete(key)
        if state:
            pipe.hset(key, mapping=state)
        pipe.execute()

    def source_items(self, source: str) -> set[str]:
        return set(self.redis.smembers(self.keys.source_items(source)))

    def set_source_items(self, source: str, ids: set[str]) -> None:
        """What a complete source lists now (only complete sources keep this, for removals)."""
        key = self.keys.source_items(source)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        if ids:
            pipe.sadd(key, *ids)
        pipe.execute()

    def first_poll_done(self, source: str) -> bool:
        if self.redis.sismember(self.keys.source_seen(), source):
            return True
        if self.journal is not None and self.journal.first_poll_done(source):
            self.redis.sadd(self.keys.source_seen(), source)  # Redis forgot it: not a new source
            return True
        return False

    def mark_polled(self, source: str) -> None:
        if self.redis.sadd(self.keys.source_seen(), source) and self.journal is not None:
            self.journal.source_polled([source])

    # --- feeds -----------------------------------------------------------------------------------

    def index(self, article: Article, feeds: Iterable[str]) -> set[str]:
        """Put the article in exactly `feeds`; return every feed whose contents changed."""
        wanted = set(feeds)
        known = set(self.redis.hkeys(self.keys.feed_names()))
        pipe = self.redis.pipeline()
        for name in known | wanted:
            pipe.zscore(self.keys.feed_index(name), article.id)
        scores = dict(zip(known | wanted, pipe.execute(), strict=True))
        pipe = self.redis.pipeline()
        for name in wanted:
            pipe.zadd(self.keys.feed_index(name), {article.id: article.published.timestamp()})
        left = {name for name, score in scores.items() if score is not None and name not in wanted}
        for name in left:
            pipe.zrem(self.keys.feed_index(name), article.id)
        pipe.execute()
        return wanted | left

    def unindex(self, article_id: str) -> set[str]:
        names = set(self.redis.hkeys(self.keys.feed_names()))
        pipe = self.redis.pipeline()
        for name in names:
            pipe.zrem(self.keys.feed_index(name), article_id)
        removed = pipe.execute()
        return {name for name, count in zip(names, removed, strict=True) if count}

    def register_feed(self, name: str, meta: dict[str, Any]) -> None:
        self.redis.hset(self.keys.feed_names(), name, json.dumps(meta, ensure_ascii=False))

    def feed_meta(self) -> dict[str, dict[str, Any]]:
        return {name: json.loads(raw) for name, raw in self.redis.hgetall(self.keys.feed_names()).items()}

    def feed_articles(self, name: str, limit: int) -> list[Article]:
        """The newest `limit` articles of a feed: cost follows the limit, not the archive."""
        return self.get_many(self.redis.zrevrange(self.keys.feed_index(name), 0, limit - 1))

    def save_render(self, name: str, fmt: str, body: bytes, etag: str, modified: datetime) -> None:
        """Store a rendering with its gzip bytes beside it (one HSET: readers never see a body with
        another body's ETag), so that web processes serve gzip without compressing anything."""
        self.binary.hset(
            self.keys.feed_render(name, fmt),
            mapping={"body": body, "gzip": compress(body), "etag": etag, "modified": modified.timestamp()},
        )

    def render_etag(self, name: str, fmt: str) -> str | None:
        """The stored rendering's ETag alone: comparing it costs no transfer of the body."""
        etag = self.binary.hget(self.keys.feed_render(name, fmt), "etag")
        return None if etag is None else bytes(etag).decode()

    def load_render(self, name: str, fmt: str) -> dict[bytes, bytes]:
        return dict(self.binary.hgetall(self.keys.feed_render(name, fmt)))
