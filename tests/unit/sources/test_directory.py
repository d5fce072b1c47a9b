"""The directory source: Markdown and JSON files; malformed files are reported and skipped."""

from __future__ import annotations

import json
import os
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


# --- a poll of unchanged files is a stat per file, not a parse -------------------------------------


def settled(path: Path, text: str, age: float = 60.0) -> Path:
    """A file last written `age` seconds ago (older than the racy window)."""
    path.write_text(text, encoding="utf-8")
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    read: list[str] = []
    real = DirectorySource.read

    def counted(self: DirectorySource, path: Path):  # type: ignore[no-untyped-def]
        read.append(path.name)
        return real(self, path)

    monkeypatch.setattr(DirectorySource, "read", counted)
    return read


def test_unchanged_folder_is_not_modified_and_no_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(3):
        settled(tmp_path / f"{n}.md", f"---\ntitle: Tin {n}\n---\nBài {n}.\n")
    read = counting_reads(monkeypatch)
    first = source(tmp_path).poll({})
    assert len(first.drafts) == 3 and not first.not_modified and first.state
    second = source(tmp_path).poll(first.state)  # a new instance, as every poll makes
    assert second.not_modified and second.state == first.state
    assert read == ["0.md", "1.md", "2.md"]


def test_only_a_changed_file_is_read_again_and_the_listing_stays_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        settled(tmp_path / f"{n}.md", f"---\ntitle: Tin {n}\n---\n")
    state = source(tmp_path).poll({}).state
    read = counting_reads(monkeypatch)
    settled(tmp_path / "1.md", "---\ntitle: Tin 1 đã sửa\n---\n", age=30)
    result = source(tmp_path).poll(state)
    assert not result.not_modified and result.complete
    assert sorted(d.title for d in result.drafts) == ["Tin 0", "Tin 1 đã sửa", "Tin 2"]
    assert read == ["1.md"]


def test_a_removed_file_is_noticed(tmp_path: Path) -> None:
    for n in range(2):
        settled(tmp_path / f"{n}.md", f"---\ntitle: Tin {n}\n---\n")
    state = source(tmp_path).poll({}).state
    (tmp_path / "0.md").unlink()
    result = source(tmp_path).poll(state)
    assert not result.not_modified and result.complete
    assert [d.title for d in result.drafts] == ["Tin 1"]


def test_a_malformed_file_is_reported_at_every_poll(tmp_path: Path) -> None:
    settled(tmp_path / "ok.md", "---\ntitle: Tốt\n---\n")
    settled(tmp_path / "bad.md", "---\ntitle: [unclosed\n---\n")
    first = source(tmp_path).poll({})
    second = source(tmp_path).poll(first.state)
    assert len(first.errors) == len(second.errors) == 1 and "bad.md" in str(second.errors[0])
    assert not second.not_modified and [d.title for d in second.drafts] == ["Tốt"]


def test_changed_settings_read_the_folder_again(tmp_path: Path) -> None:
    settled(tmp_path / "a.md", "---\ntitle: A\n---\n")
    state = source(tmp_path).poll({}).state
    other = DirectorySource(
        DirectorySettings(name="files", type="directory", path=str(tmp_path), category="Y tế"), SITE
    )
    result = other.poll(state)
    assert not result.not_modified and result.drafts[0].categories == ["Y tế"]


def test_a_file_written_just_now_is_not_trusted_by_its_stat(tmp_path: Path) -> None:
    """Written twice within one mtime tick with the same size, a file would look unchanged."""
    (tmp_path / "a.md").write_text("---\ntitle: A\n---\n", encoding="utf-8")
    first = source(tmp_path).poll({})
    assert first.state == {}  # no fingerprint while a file is that fresh
    (tmp_path / "a.md").write_text("---\ntitle: B\n---\n", encoding="utf-8")
    second = source(tmp_path).poll(first.state)
    assert not second.not_modified and second.drafts[0].title == "B"
