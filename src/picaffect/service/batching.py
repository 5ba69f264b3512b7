"""Micro-batching: pictures of concurrent requests scored together in one worker thread.

A request puts its decoded pictures on a queue and awaits one future per picture.
One worker thread takes the first waiting picture, then whatever else arrives
within ``wait_s`` (or is already waiting, because the model was busy), up to
``batch_size``, and scores them in one call of the scoring function. The event
loop never runs the model, so it keeps accepting uploads while a batch runs; and
concurrent single-picture clients get the batch speed of the Predictor.

``reserve`` bounds the pictures admitted and not yet answered: past ``max_pending``
it raises ``Saturated``, which the service answers with 503 and ``Retry-After``.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import numpy as np


class Saturated(Exception):
    """More pictures are waiting than the queue admits."""


@dataclass(eq=False)
class _Job:
    array: np.ndarray
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    cancelled: threading.Event = field(default_factory=threading.Event)


_STOP = object()


def _resolve(future: asyncio.Future, value=None, error: BaseException | None = None) -> None:
    if future.done():  # the request gave up (timeout, client gone)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _post(job: _Job, value=None, error: BaseException | None = None) -> None:
    try:
        job.loop.call_soon_threadsafe(_resolve, job.future, value, error)
    except RuntimeError:  # the event loop has closed: nobody waits for this answer any more
        pass


class MicroBatcher:
    """Scores (size, size, 3) uint8 arrays in shared batches on one worker thread."""

    def __init__(self, score: Callable[[np.ndarray], np.ndarray], *, batch_size: int = 32, wait_s: float = 0.005,
                 max_pending: int = 2048) -> None:
        self._score = score
        self.batch_size = batch_size
        self.wait_s = wait_s
        self.max_pending = max_pending
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self.batches = 0   # counters for /v1/health and tests
        self.scored = 0

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="picaffect-model", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def reserve(self, n: int) -> None:
        """Hold ``n`` places for a request's pictures; ``Saturated`` if the queue is full. ``release`` gives them back."""
        with self._lock:
            if self._pending + n > self.max_pending:
                raise Saturated(f"{self._pending} pictures are waiting to be scored; this server admits "
                                f"{self.max_pending}")
            self._pending += n

    def release(self, n: int) -> None:
        with self._lock:
            self._pending -= n

    async def score(self, arrays: Sequence[np.ndarray], timeout: float) -> list[np.ndarray]:
        """(valence, arousal) per array, in order; ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        if self._thread is None:
            raise RuntimeError("the batcher is not started")
        loop = asyncio.get_running_loop()
        jobs = [_Job(a, loop.create_future(), loop) for a in arrays]
        for job in jobs:
            self._queue.put(job)
        try:
            return list(await asyncio.wait_for(asyncio.gather(*(j.future for j in jobs)), timeout))
        except BaseException:
            for job in jobs:  # not scored yet: the worker skips them
                job.cancelled.set()
            raise

    def _next_batch(self, first: _Job) -> tuple[list[_Job], bool]:
        batch, stop = [first], False
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.batch_size:
            left = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch, stop = self._next_batch(item)
            live = [j for j in batch if not j.cancelled.is_set()]
            if live:
                try:
                    values = self._score(np.stack([j.array for j in live]))
                except BaseException as e:  # a bug or an exhausted machine: every waiting request hears of it
                    for j in live:
                        _post(j, None, e)
                else:
                    self.batches += 1
                    self.scored += len(live)
                    for j, v in zip(live, values):
                        _post(j, v)
            if stop:
                return
