"""The Distributor Celery app plus one empty task: the baseline bench_delivery.py compares against.

celery -A bench.empty_task worker ...   (from the repository root)
"""

from __future__ import annotations

from worker.celery_app import app

__all__ = ["app", "empty"]


@app.task(name="bench.empty", ignore_result=True)
def empty() -> None:
    """Nothing: what a task costs the broker and the worker, and no more."""
