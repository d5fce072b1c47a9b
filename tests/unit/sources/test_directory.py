"""The directory source: Markdown and JSON files; malformed files are reported and skipped."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from distributor.errors import SourceError
from distributor.settings import SiteSettings
from distributor.sources.directory import DirectorySettings, DirectorySource

SITE = SiteSettings(title="T", url="https://portal.example.gov.vn")


def source(folder: Path) -> DirectorySource:
    return DirectorySource(DirectorySettings(name="files", type="directory", path=str(folder)), SITE)


def test_markdown_with_front_matter(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        '---\ntitle: "Tin một"\npublished: "13/07/2021 08:30"\ncategory: Tin Tức Sự Kiện\ntags: [a, b]\n---\n'
        "Đoạn **một**.\n\nĐoạn hai.\n",
        encoding="utf-8",
    )
    result = source(tmp_path).poll({})
    assert result.complete and not result.errors
    [draft] = result.drafts
    assert draft.title == "Tin một"
    assert draft.url == "https://portal.example.gov.vn/a"  # the file name is the identity
    assert draft.categories == ["Tin Tức Sự Kiện"] and draft.tags == ["a", "b"]
    assert "<strong>một</strong>" in draft.content and "<p>Đoạn hai.</p>" in draft.content
    assert draft.published == "13/07/2021 08:30"


def test_json_article(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(
        json.dumps({"url": "https://x.vn/b", "title": "B", "content": "<p>x</p>", "categories": ["C"]}),
        encoding="utf-8",
    )
    [draft] = source(tmp_path).poll({}).drafts
    assert (draft.url, draft.title, draft.content, draft.categories) == ("https://x.vn/b", "B", "<p>x</p>", ["C"])


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("broken.json", "{not json", "Expecting property name"),
        ("list.json", "[1, 2]", "must be an object"),
        ("notitle.md", "---\nauthor: x\n---\nbody", "no 'title'"),
        ("badyaml.md", "---\ntitle: [unclosed\n---\nbody", "while parsing"),
        ("latin1.md", b"---\ntitle: \xe9t\xe9\n---\n", "codec can't decode"),
    ],
)
def test_malformed_file_is_reported_with_its_path_and_skipped(
    tmp_path: Path, name: str, body: str | bytes, reason: str
) -> None:
    (tmp_path / "good.md").write_text("---\ntitle: Tốt\n---\nx", encoding="utf-8")
    target = tmp_path / name
    if isinstance(body, bytes):
        target.write_bytes(body)
    else:
        target.write_text(body, encoding="utf-8")
    result = source(tmp_path).poll({})
    assert [d.title for d in result.drafts] == ["Tốt"]
    [error] = result.errors
    assert str(target) in str(error) and "files" in str(error) and reason in str(error)


def test_front_matter_of_the_wrong_shape_is_reported_not_fatal(tmp_path: Path) -> None:
    # YAML aliases nest a list 10^8 items deep in 300 bytes: str() of it took seconds and
    # gigabytes (one level more: minutes); a numeric key made frontmatter raise TypeError.
    levels = "".join(f"l{i + 1}: &l{i + 1} [{', '.join([f'*l{i}'] * 10)}]\n" for i in range(7))
    bomb = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + levels
    (tmp_path / "good.md").write_text("---\ntitle: Tốt\n---\nx", encoding="utf-8")
    (tmp_path / "tags.md").write_text(f"---\ntitle: T\n{bomb}tags: *l7\n---\nx", encoding="utf-8")
    (tmp_path / "date.md").write_text(f"---\ntitle: T\n{bomb}published: *l7\n---\nx", encoding="utf-8")
    (tmp_path / "key.md").write_text("---\n2021: năm\ntitle: T\n---\nx", encoding="utf-8")
    started = time.monotonic()
    result = source(tmp_path).poll({})
    assert time.monotonic() - started < 1
    assert [d.title for d in result.drafts] == ["Tốt"]
    assert sorted(Path(str(e.input)).name for e in result.errors) == ["date.md", "key.md", "tags.md"]


def test_hidden_and_other_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / ".draft.md").write_text("---\ntitle: hidden\n---\n")
    (tmp_path / "notes.txt").write_text("x")
    assert source(tmp_path).poll({}).drafts == []


def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="folder does not exist"):
        source(tmp_path / "nope").poll({})
