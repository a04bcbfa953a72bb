"""A bounded pool for ONNX work: N worker threads, a waiting queue of fixed size, deadlines.

onnxruntime releases the GIL while a graph runs, and the bundle's sessions are created with one
intra-op thread (and one inter-op thread), so each worker keeps exactly one core busy and N
workers never oversubscribe an N-core machine. A request that finds the queue full is refused
at once (the caller answers 503 with Retry-After) instead of waiting without bound.
"""

import asyncio
import math
import queue
import threading
import time


class Overloaded(Exception):
    """The queue is full; retry_after is a suggested wait in whole seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    """The job did not finish before its deadline (it may have waited in the queue too long)."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class Cancelled(Exception):
    """The request that submitted the job went away."""


class Job:
    """One submitted function, its deadline, and the future its request awaits."""

    __slots__ = ("fn", "deadline", "future", "loop", "cancelled", "enqueued")

    def __init__(self, fn, deadline, future, loop):
        self.fn, self.deadline, self.future, self.loop = fn, deadline, future, loop
        self.cancelled = False
        self.enqueued = time.monotonic()

    def check(self):
        """Called by the job between steps: raise if it should stop."""
        if self.cancelled:
            raise Cancelled("the request was cancelled")
        if time.monotonic() > self.deadline:
            raise DeadlineExceeded("the adaptation did not finish within the server's time limit")


class WorkerPool:
    """N worker threads taking jobs from one queue; admission is refused beyond queue_size waiting."""

    def __init__(self, workers: int, queue_size: int, name: str = "onnx"):
        self.workers = workers
        self.queue_size = queue_size
        # Admission is bounded by the counters below (waiting <= queue_size + idle workers), so the
        # hand-off queue itself needs no bound.
        self._queue = queue.Queue()
        self._lock = threading.Lock()
        self._idle = workers  # workers not running a job
        self._waiting = 0  # jobs submitted but not yet picked up
        self._mean_s = 0.5  # running mean of job durations, for Retry-After
        self.rejected = 0
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ state
    @property
    def waiting(self) -> int:
        """Jobs submitted but not yet picked up by a worker."""
        return self._waiting

    @property
    def busy(self) -> int:
        """Workers running a job."""
        return self.workers - self._idle

    def retry_after(self) -> int:
        """Seconds until a worker is likely free for a new job."""
        return max(1, math.ceil((self._waiting + 1) * self._mean_s / self.workers))

    # ------------------------------------------------------------------ submit
    async def run(self, fn, timeout_s: float):
        """Run fn(job) on a worker; fn may call job.check() between steps. Raises Overloaded when
        the queue is full, DeadlineExceeded after timeout_s (counted from now), or what fn raises."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        job = Job(fn, time.monotonic() + timeout_s, future, loop)
        with self._lock:
            if self._waiting >= self.queue_size + self._idle:
                self.rejected += 1
                raise Overloaded(
                    f"the server is busy ({self.workers} adaptations running, {self._waiting} waiting, "
                    f"queue limit {self.queue_size}); retry later",
                    self.retry_after(),
                )
            self._waiting += 1
        self._queue.put_nowait(job)
        try:
            # The worker stops the job at its deadline (job.check); the margin covers one long step.
            return await asyncio.wait_for(asyncio.shield(future), timeout_s + 5.0)
        except asyncio.TimeoutError:
            job.cancelled = True
            raise DeadlineExceeded(
                f"the adaptation did not finish within {timeout_s:g} s", self.retry_after()
            ) from None
        except asyncio.CancelledError:
            job.cancelled = True
            raise

    # ------------------------------------------------------------------ workers
    def _work(self):
        """A worker thread: run jobs until close(), handing each outcome to its request's event loop."""
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
                self._idle -= 1
            start = time.monotonic()
            try:
                if job.cancelled:
                    raise Cancelled("the request was cancelled")
                if start > job.deadline:
                    raise DeadlineExceeded(
                        f"the request waited {start - job.enqueued:.1f} s in the queue, past the "
                        "server's time limit; retry later",
                        self.retry_after(),
                    )
                outcome = (True, job.fn(job))
            except BaseException as error:  # handed to the request; the worker lives on
                outcome = (False, error)
            finally:
                elapsed = time.monotonic() - start
                with self._lock:
                    self._idle += 1
                    self._mean_s = 0.9 * self._mean_s + 0.1 * elapsed
            job.loop.call_soon_threadsafe(_resolve, job.future, outcome)

    def close(self):
        """Stop the workers once the jobs already queued are done."""
        for _ in self._threads:
            self._queue.put(None)


def _resolve(future, outcome):
    """On the event loop: settle the job's future, unless its request has gone away."""
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
