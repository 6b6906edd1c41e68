"""Dynamic batching: sentences from concurrent requests are decoded together.

Requests wait in a queue. A worker takes the first, then keeps taking requests with
the same decoding options until the batch holds `max_batch_size` sentences or
`max_wait_ms` has passed since the first arrived; requests with other options wait for
the next batch, in order. The batch is translated in a worker thread (the event loop
keeps accepting requests), and each request gets back exactly its own slice of the
results: answers are matched to requests by position, never by content.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

Translate = Callable[[list[str], dict[str, Any]], list[Any]]


@dataclass
class Job:
    texts: list[str]
    options: dict[str, Any]
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> Hashable:
        return tuple(sorted(self.options.items()))


class DynamicBatcher:
    """One model's queue and worker. `translate(texts, options)` runs in one thread."""

    def __init__(
        self,
        translate: Translate,
        max_batch_size: int,
        max_wait_ms: float,
        enabled: bool = True,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.translate = translate
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.enabled = enabled
        self.on_batch = on_batch  # (sentences, seconds) after each batch, for metrics
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.deferred: deque[Job] = deque()  # taken from the queue, other options
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
        self.worker: asyncio.Task | None = None

    def start(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            try:
                await self.worker
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=True)

    async def submit(self, texts: Sequence[str], options: dict[str, Any]) -> list[Any]:
        """The translations of `texts`, in order, once their batch has been decoded."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(Job(list(texts), dict(options), future))
        return await future

    async def _next(self, timeout: float | None) -> Job | None:
        if self.deferred:
            return self.deferred.popleft()
        if timeout is None:
            return await self.queue.get()
        try:  # what has already arrived joins the batch, however long it waited
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            if timeout <= 0:
                return None
        try:
            return await asyncio.wait_for(self.queue.get(), timeout=timeout)
        except TimeoutError:
            return None

    async def _gather(self) -> list[Job]:
        """The next batch: jobs with the first job's options, up to the size or the wait."""
        first = await self._next(None)
        batch, size = [first], len(first.texts)
        if not self.enabled:
            return batch
        later: list[Job] = []
        deadline = first.arrived + self.max_wait
        while size < self.max_batch_size:
            job = await self._next(deadline - time.monotonic())
            if job is None:
                break
            if job.key == first.key and size + len(job.texts) <= self.max_batch_size:
                batch.append(job)
                size += len(job.texts)
            else:
                later.append(job)
                if job.key == first.key:
                    break  # the batch is full
        self.deferred.extendleft(reversed(later))  # keep arrival order for the next batch
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [job for job in await self._gather() if not job.future.done()]
            if not batch:
                continue  # every request of this batch timed out or went away
            texts = [text for job in batch for text in job.texts]
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(
                    self.executor, self.translate, texts, batch[0].options
                )
            except Exception as exc:  # a failed batch fails its requests, not the server
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(len(texts), time.perf_counter() - started)
            start = 0
            for job in batch:
                mine = results[start : start + len(job.texts)]
                start += len(job.texts)
                if not job.future.done():
                    job.future.set_result(mine)
