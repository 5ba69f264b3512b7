"""Decoding pictures on a few threads, in order.

Pillow releases the GIL while it decodes and resizes, so threads use every core
without the start-up and pickling cost of processes; results come back in input
order, with a bounded number in flight, so memory stays flat on any number of items.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int | None = None) -> Iterator[R]:
    """``map`` on a thread pool, in input order, with at most ``ahead`` in flight (default 4 per worker).

    A consumer that takes items in batches (``Predictor.predict_stream``) asks for a
    batch or two ahead, so that the next batch decodes while it works on this one.
    """
    if workers <= 1 and ahead is None:
        yield from map(fn, items)
        return
    limit = max(ahead or 0, 4 * workers, 1)
    with ThreadPoolExecutor(max(workers, 1)) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
