"""Articles pushed by the CMS to `POST /api/articles` (or `distributor publish`).

Nothing is polled: the web route validates and queues each article, the worker ingests it. The
source exists so operators can name the pushes (feed filters by source) and turn them off.
"""

from __future__ import annotations

from distributor.sources.base import PollResult, Source


class PushSource(Source):
    type = "push"

    def poll(self, state: dict[str, str]) -> PollResult:
        return PollResult(state=state, not_modified=True)
