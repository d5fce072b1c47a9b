"""A folder of article files: Markdown with front matter (`.md`) and JSON (`.json`).

Every poll lists the whole folder, so the result is complete: a removed file unpublishes its
article. A malformed file is reported with its path and skipped; the others go on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import frontmatter
import yaml
from markdown_it import MarkdownIt

from distributor.normalize import Draft
from distributor.settings import SourceSettings
from distributor.sources.base import PollResult, Source
from distributor.text import slugify

SUFFIXES = {".md", ".markdown", ".json"}
MAX_FILE_BYTES = 5 * 1024 * 1024
_markdown = MarkdownIt("commonmark", {"html": True}).enable("table")
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
    raise ValueError(f"expected a list of strings, got {type(value).__name__}")


class DirectorySource(Source):
    type = "directory"
    settings_model = DirectorySettings

    @property
    def folder(self) -> Path:
        return Path(self.settings.path or self.data_dir / "articles")

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        recursive = isinstance(self.settings, DirectorySettings) and self.settings.recursive
        pattern = "**/*" if recursive else "*"
        return sorted(
            p
            for p in self.folder.glob(pattern)
            if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith((".", "~"))
        )

    def poll(self, state: dict[str, str]) -> PollResult:
        if not self.folder.is_dir():
            raise self.error("folder does not exist", str(self.folder))
        result = PollResult(complete=True)
        for path in self.files():
            try:
                result.drafts.append(self.read(path))
            except (ValueError, TypeError, OSError, yaml.YAMLError) as exc:  # TypeError: a key like 2021
                result.errors.append(self.error(f"skipped malformed file: {exc}", str(path)))
        return result

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
