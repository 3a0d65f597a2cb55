"""Where the runs are analysed: a local process pool (the default) or an existing Dask cluster.

Both yield rows as they finish, with a bounded number of runs in flight, so a batch of any size holds
only the finished rows and a window of pending ones. ``analyze_path`` never raises, so one broken run
never stops the others; a worker that dies (killed, out of memory) becomes an error row for its run.

The local pool hands runs out in chunks of ``CHUNK`` and gets their rows back as one list: one task
message and one result message per chunk instead of per run, so the parent (which shares the cores
with the workers) does less per run. A worker that dies breaks a ``ProcessPoolExecutor`` for good:
then, as with one run per task, every run not yet finished becomes an error row.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Callable, Iterable, Iterator

from mnv4_postmortem.analyzer.batch.rows import RunRow, RunTask, analyze_path, display_name

IN_FLIGHT_PER_WORKER = 4  # runs in flight per Dask worker thread
CHUNK = 4  # runs per task in the local pool (a small run is ~30 ms: a chunk is ~0.1 s of a worker's time)
# Imported once in the fork server, so every worker starts with the pipeline loaded (fork is cheap,
# and forking from the server, not from the CLI process, avoids forking rich's progress thread).
# batch.preload also loads the shipped rule pack and the pretrained-config table there, so no worker
# pays them on its first run.
PRELOAD = ("mnv4_postmortem.analyzer.pipeline", "mnv4_postmortem.analyzer.ingest", "mnv4_postmortem.analyzer.render.html",
           "mnv4_postmortem.analyzer.batch.rows", "mnv4_postmortem.analyzer.batch.preload")


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class BatchSetupError(RuntimeError):
    """The batch cannot run where it was asked to (an unreachable Dask scheduler): a usage problem, exit 2."""


POOL_START_SECONDS = 120  # a worker that has not answered by then is not coming
DASK_CONNECT_TIMEOUT = "10s"  # distributed's own default is 30 s; a scheduler that far away is a usage problem


def run_local(paths: Iterable[str], task: RunTask, jobs: int,
              notice: Callable[[str], None] | None = None) -> Iterator[RunRow]:
    """Rows from a process pool; when the pool cannot start (no usable temp dir for the fork server's
    socket, no semaphores, a process limit), from this process, one run at a time, with a ``notice``."""
    with LocalPool(jobs, notice) as pool:
        yield from pool.rows(paths, task)


class LocalPool:
    """The worker processes of ``run_local``, started once (``with LocalPool(jobs) as pool``) and used for
    one or more batches of rows: ``bench/bench_batch.py`` times the start-up and the rows apart."""

    def __init__(self, jobs: int, notice: Callable[[str], None] | None = None):
        self.jobs = jobs
        self._pool = _started_pool(jobs, notice)

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def rows(self, paths: Iterable[str], task: RunTask) -> Iterator[RunRow]:
        pool = self._pool
        if pool is None:
            yield from (analyze_path(p, task) for p in paths)
            return
        try:
            chunks = _chunked(paths, CHUNK)
            window = 2 * self.jobs  # chunks in flight: each worker has one queued behind the one it runs
            for rows in _windowed(lambda c: pool.submit(analyze_paths, c, task), chunks, window,
                                  lambda chunk, exc: [_failed_row(p, task, exc) for p in chunk]):
                yield from rows
        except BaseException:
            # Ctrl-C (or the consumer stopped): drop the queued runs and wait only for the ones being analysed,
            # so no worker writes a report after the batch has written its outputs.
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _started_pool(jobs: int, notice: Callable[[str], None] | None) -> ProcessPoolExecutor | None:
    try:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(PRELOAD))
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init)
        pool.submit(os.getpid).result(timeout=POOL_START_SECONDS)  # processes start here, or fail here
        return pool
    except Exception as exc:  # noqa: BLE001 - whatever stops the pool, the batch still runs
        if notice is not None:
            notice(f"mnv4-postmortem: note: the worker pool could not start ({type(exc).__name__}: {exc}); "
                   "analysing in this process, one run at a time")
        return None


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group: only the parent decides what an interrupt means (it keeps
    # the finished rows); a worker finishes the run it holds.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def analyze_paths(paths: tuple[str, ...], task: RunTask) -> list[RunRow]:
    """One chunk's rows (in a worker)."""
    return [analyze_path(p, task) for p in paths]


def _chunked(paths: Iterable[str], size: int) -> Iterator[tuple[str, ...]]:
    chunk: list[str] = []
    for path in paths:
        chunk.append(path)
        if len(chunk) == size:
            yield tuple(chunk)
            chunk = []
    if chunk:
        yield tuple(chunk)


def _windowed(submit, items: Iterable, window: int, on_failure) -> Iterator:
    """``submit(item)`` for each item, at most ``window`` in flight; the results as they finish
    (``on_failure(item, exc)`` for a task whose worker died)."""
    pending: dict[Future, object] = {}
    queue = iter(items)
    for item in queue:
        pending[submit(item)] = item
        if len(pending) >= window:
            break
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            item = pending.pop(future)
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - the worker itself died (BrokenProcessPool, MemoryError...)
                yield on_failure(item, exc)
            nxt = next(queue, None)
            if nxt is not None:
                pending[submit(nxt)] = nxt


def _failed_row(path: str, task: RunTask, exc: BaseException) -> RunRow:
    return RunRow(path=path, name=display_name(path, task.roots), error=f"worker failed: {type(exc).__name__}: {exc}")


def run_dask(paths: Iterable[str], task: RunTask, address: str) -> Iterator[RunRow]:
    """The same analysis on an existing Dask cluster (``dask.distributed``), results streamed back."""
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # an optional extra
        raise RuntimeError("--dask-scheduler needs dask.distributed: pip install 'mnv4-postmortem[dask]'") from exc

    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise BatchSetupError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    with client:  # the default client while the batch runs (as_completed looks it up)
        window = max(2, sum(client.nthreads().values())) * IN_FLIGHT_PER_WORKER
        queue = iter(paths)
        first = [p for _, p in zip(range(window), queue)]
        futures = {client.submit(analyze_path, p, task, pure=False): p for p in first}
        stream = as_completed(list(futures))
        for future in stream:
            path = futures.pop(future)
            try:
                row = future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker
                row = RunRow(path=path, name=display_name(path, task.roots), error=f"worker failed: {type(exc).__name__}: {exc}")
            future.release()
            yield row
            nxt = next(queue, None)
            if nxt is not None:
                new = client.submit(analyze_path, nxt, task, pure=False)
                futures[new] = nxt
                stream.add(new)
