"""Building web sources for tests and asserting how they fail."""

from __future__ import annotations

from typing import TypeVar

import pytest

from distributor.errors import SourceError
from distributor.settings import SiteSettings
from distributor.sources.web import WebSource

SITE = SiteSettings(title="Cổng thông tin", url="https://portal.example.vn")
NAME = "portal"
S = TypeVar("S", bound=WebSource)


def web_source(cls: type[S], url: str, **options: object) -> S:
    """A source named 'portal' reading `url`, without politeness delays or retries."""
    values = {"name": NAME, "type": cls.type, "url": url, "politeness": 0, "retries": 0}
    return cls(cls.settings_model.model_validate({**values, **options}), SITE)


def poll_fails(source: WebSource, state: dict[str, str] | None = None) -> SourceError:
    """The SourceError a poll raises, checked to name the source and the URL it read (the
    source's URL, or one below it such as an API endpoint)."""
    with pytest.raises(SourceError) as caught:
        source.poll(state or {})
    assert caught.value.source == NAME
    assert str(caught.value).startswith(f"{NAME}: {source.url}")
    return caught.value
