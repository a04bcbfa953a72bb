"""The server's worker pool: a full queue answers 503 with Retry-After, the time limit (queueing
included), and jobs that run side by side and survive a failing one."""

import asyncio
import concurrent.futures
import threading
import time

import pytest
from fastapi.testclient import TestClient
from server_helpers import assert_error, fast, post, task

from server.app import create_app
from server.config import Settings


def occupy(pool, seconds: float):
    """Block the pool's workers with jobs from another event loop; returns the event that releases them."""
    release = threading.Event()
    started = threading.Barrier(pool.workers + 1)

    def block(job):
        started.wait(5)
        release.wait(seconds)

    async def submit():
        await asyncio.gather(*(pool.run(block, seconds + 5) for _ in range(pool.workers)))

    thread = threading.Thread(target=asyncio.run, args=(submit(),), daemon=True)
    thread.start()
    started.wait(5)
    return release, thread


def test_queue_full_gives_503_with_retry_after(web_dir):
    app = create_app(Settings(web_dir=web_dir, workers=1, queue=0))
    with TestClient(app) as c:
        release, thread = occupy(app.state.demo.pool, 10)
        try:
            r = post(c, fast(task(classes=2)))
            assert_error(r, 503, "busy")
            assert int(r.headers["retry-after"]) >= 1
            assert c.get("/readyz").json()["busy"] == 1
        finally:
            release.set()
            thread.join(5)
        assert post(c, fast(task(classes=2))).status_code == 200
        assert app.state.demo.pool.rejected == 1


def test_time_limit(web_dir):
    app = create_app(Settings(web_dir=web_dir, workers=1, queue=4, timeout_s=0.3))
    with TestClient(app) as c:
        start = time.perf_counter()
        r = post(c, fast(task(classes=10, shots=5, queries=1), steps=200))
        assert_error(r, 503, "time limit")
        assert "retry-after" in r.headers
        assert time.perf_counter() - start < 5
        # waiting in the queue counts too
        release, thread = occupy(app.state.demo.pool, 0.6)
        try:
            r = post(c, fast(task(classes=2), steps=1))
        finally:
            release.set()
            thread.join(5)
        assert_error(r, 503, "queue")


def test_pool_runs_jobs_concurrently_and_survives_errors():
    from server.pool import WorkerPool

    pool = WorkerPool(workers=2, queue_size=2)
    both_running = threading.Barrier(2, timeout=10)  # passes only if the two jobs run at the same time

    async def main():
        def together(job):
            both_running.wait()
            return threading.current_thread().name

        def fail(job):
            raise KeyError("boom")

        names = await asyncio.gather(pool.run(together, 15), pool.run(together, 15))
        with pytest.raises(KeyError):
            await pool.run(fail, 5)
        return names, await pool.run(lambda job: 7, 5)

    # its own thread: the browser tests' session-scoped Playwright keeps an event loop running in this one
    with concurrent.futures.ThreadPoolExecutor(1) as runner:
        names, last = runner.submit(asyncio.run, main()).result(timeout=60)
    pool.close()
    assert len(set(names)) == 2 and last == 7
