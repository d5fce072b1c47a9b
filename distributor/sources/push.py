"""Articles pushed by the CMS to `POST /api/articles` (or `distributor publish`).

Nothing is polled: the web route validates and queues each article, the worker ingests it. The
source exists so operators can name the pushes (feed filters by source) and turn them off.
`PushedArticle` is the JSON contract of a push, checked field by field before anything is queued.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from distributor.normalize import Draft
from distributor.sources.base import PollResult, Source


class PushSource(Source):
    type = "push"

    def poll(self, state: dict[str, str]) -> PollResult:
        return PollResult(state=state, not_modified=True)


class PushedArticle(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=5_000_000)

    url: str = Field(min_length=1)
    title: str = Field(min_length=1)
    content: str = ""
    summary: str = ""
    image: str | None = None
    author: str | None = None
    categories: list[str] = []
    tags: list[str] = []
    language: str | None = None
    published: str | None = None
    updated: str | None = None
    canonical: str | None = None

    def draft(self) -> Draft:
        return Draft(**self.model_dump())


def problems(error: ValidationError) -> str:
    """'categories: Input should be a valid list; colour: Extra inputs are not permitted'."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors())
