"""A folder of article files: Markdown with front matter (`.md`) and JSON (`.json`).

Every poll lists the whole folder, so the result is complete: a removed file unpublishes its
article. A malformed file is reported with its path and skipped; the others go on.

A poll of an unchanged folder costs a stat per file, not a parse: the source state keeps a
fingerprint of the listing (path, mtime, size, inode of every file, and the settings), and a poll
that finds the same one answers `not_modified`. When something changed, only the changed files are
read again; the others come from an in-process cache of parsed drafts keyed the same way.
"""

from __future__ import annotations

import hashlib
import json
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frontmatter
import yaml
from markdown_it import MarkdownIt

from distributor import __version__
from distributor.normalize import Draft
from distributor.settings import SourceSettings, _
from distributor.sources.base import PollResult, Source
from distributor.text import slugify

SUFFIXES = {".md", ".markdown", ".json"}
MAX_FILE_BYTES = 5 * 1024 * 1024
_markdown = MarkdownIt("commonmark", {"html": True}).enable("table")
# A file changed less than this long ago may change again within the same mtime tick: read it again
# next poll rather than trust its stat (git's "racily clean" rule).
RACY_SECONDS = 2.0
_FIELDS = ("url", "title", "summary", "image", "author", "language", "published", "updated", "canonical")


class DirectorySettings(SourceSettings):
    recursive: bool = True


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    # Items must be scalars: str() of a list nested by YAML aliases can be gigabytes long.
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    raise ValueError(_("expected a list of strings, got {kind}").format(kind=type(value).__name__))


Signature = tuple[int, int, int]  # mtime_ns, size, inode


@dataclass(frozen=True)
class _Parsed:
    signature: Signature
    draft: Draft | None
    error: str = ""


# Parsed files per source (keyed by its settings too), kept between polls in this process.
_parsed: dict[str, dict[str, _Parsed]] = {}
_parsed_lock = threading.Lock()


class DirectorySource(Source):
    type = "directory"
    settings_model = DirectorySettings

    @property
    def folder(self) -> Path:
        return Path(self.settings.path or self.data_dir / "articles")

    def files(self) -> list[Path]:
        return [path for path, _ in self.listing()]

    def listing(self) -> list[tuple[Path, Signature]]:
        """Every article file with its stat signature: one stat per file."""
        if not self.folder.is_dir():
            return []
        recursive = isinstance(self.settings, DirectorySettings) and self.settings.recursive
        pattern = "**/*" if recursive else "*"
        found = []
        for path in self.folder.glob(pattern):
            if path.suffix.lower() not in SUFFIXES or path.name.startswith((".", "~")):
                continue
            try:
                info = path.stat()
            except OSError:  # removed between the listing and the stat
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((path, (info.st_mtime_ns, info.st_size, info.st_ino)))
        return sorted(found)

    def _identity(self) -> str:
        """What a parsed draft depends on besides the file: the settings, the site, the code."""
        return f"{__version__}|{self.site.url}|{self.settings.model_dump_json()}"

    def poll(self, state: dict[str, str]) -> PollResult:
        if not self.folder.is_dir():
            raise self.error("folder does not exist", str(self.folder))
        started = time.time()
        listing = self.listing()
        identity = self._identity()
        digest = hashlib.sha256(identity.encode())
        for path, signature in listing:
            digest.update(f"\0{path}\0{signature}".encode("utf-8", "surrogateescape"))
        fingerprint = digest.hexdigest()
        if state.get("fingerprint") == fingerprint:
            return PollResult(complete=True, not_modified=True, state=state)
        cache_key = f"{self.name}|{identity}"
        with _parsed_lock:
            known = _parsed.get(cache_key, {})
        result = PollResult(complete=True)
        parsed: dict[str, _Parsed] = {}
        racy = False
        for path, signature in listing:
            entry = known.get(str(path))
            if entry is None or entry.signature != signature:
                entry = self._parse(path, signature)
            if started - signature[0] / 1e9 < RACY_SECONDS:
                racy = True  # may change again unseen within the same tick: not cached, not trusted
            else:
                parsed[str(path)] = entry
            if entry.draft is not None:
                result.drafts.append(entry.draft)
            else:
                result.errors.append(self.error(f"skipped malformed file: {entry.error}", str(path)))
        with _parsed_lock:
            _parsed[cache_key] = parsed  # files gone from the folder leave the cache too
        # Errors are reported again at every poll, and removals wait for them: no fingerprint then.
        result.state = {} if racy or result.errors else {"fingerprint": fingerprint}
        return result

    def _parse(self, path: Path, signature: Signature) -> _Parsed:
        try:
            return _Parsed(signature, self.read(path))
        except (ValueError, TypeError, OSError, yaml.YAMLError) as exc:  # TypeError: a key like 2021
            return _Parsed(signature, None, str(exc))

    def read(self, path: Path) -> Draft:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"file is larger than {MAX_FILE_BYTES} bytes")
        raw = path.read_bytes().decode("utf-8-sig")
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("a JSON article must be an object")
            content = str(data.get("content") or data.get("content_html") or "")
        else:
            post = frontmatter.loads(raw)
            data = dict(post.metadata)
            content = _markdown.render(post.content) if post.content.strip() else ""
        return self.draft(data, content, path)

    def draft(self, data: dict[str, Any], content: str, path: Path) -> Draft:
        values = {key: data.get(key) for key in _FIELDS}
        for key, value in values.items():
            if value is not None and not isinstance(value, str) and key not in ("published", "updated"):
                raise ValueError(f"front matter key '{key}' must be text")
        if not values["title"]:
            raise ValueError("no 'title' in front matter")
        # Without a url, the file name is the identity: editing the title must not make a new article.
        url = values["url"] or f"{self.site.url.rstrip('/')}/{slugify(path.stem) or 'bai-viet'}"
        categories = _as_list(data.get("categories") or data.get("category"))
        if not categories and self.settings.category:
            categories = [self.settings.category]
        return Draft(
            url=str(url),
            title=str(values["title"]),
            content=content,
            summary=str(values["summary"] or ""),
            image=values["image"],
            author=values["author"],
            categories=categories,
            tags=_as_list(data.get("tags")),
            language=values["language"],
            published=_date_value(values["published"]),
            updated=_date_value(values["updated"]),
            canonical=values["canonical"],
        )


def _date_value(value: Any) -> Any:
    """YAML turns `2021-07-13 21:00` into a datetime and `2021-07-13` into a date; keep both usable."""
    from datetime import date, datetime

    if isinstance(value, datetime) or value is None:
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, list | dict):  # no date; str() of one nested by YAML aliases is huge
        raise ValueError(f"a date must be text, got {type(value).__name__}")
    return str(value)
