"""Lazy 'kind -> dotted path' registries, so the list of platforms reads at a glance and a kind's
module (and its dependencies) is imported only when configured."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any


@cache
def load(dotted: str) -> Any:
    module_name, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
