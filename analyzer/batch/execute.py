"""Where the runs are analysed: a local process pool (the default) or an existing Dask cluster.

Both yield rows as they finish, with a bounded number of runs in flight, so a batch of any size holds
only the finished rows and a window of pending ones. ``analyze_path`` never raises, so one broken run
never stops the others; a worker that dies (killed, out of memory) becomes an error row for its run.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Callable, Iterable, Iterator

from mnv4_postmortem.analyzer.batch.rows import RunRow, RunTask, analyze_path, display_name

IN_FLIGHT_PER_WORKER = 4
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
    pool = _started_pool(jobs, notice)
    if pool is None:
        yield from (analyze_path(p, task) for p in paths)
        return
    try:
        yield from _windowed(lambda p: pool.submit(analyze_path, p, task), paths, jobs * IN_FLIGHT_PER_WORKER, task)
    except BaseException:
        # Ctrl-C (or the consumer stopped): drop the queued runs and wait only for the ones being analysed,
        # so no worker writes a report after the batch has written its outputs.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


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


def _windowed(submit, paths: Iterable[str], window: int, task: RunTask) -> Iterator[RunRow]:
    pending: dict[Future, str] = {}
    queue = iter(paths)
    for path in queue:
        pending[submit(path)] = path
        if len(pending) >= window:
            break
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            path = pending.pop(future)
            yield _result(future, path, task)
            nxt = next(queue, None)
            if nxt is not None:
                pending[submit(nxt)] = nxt


def _result(future: Future, path: str, task: RunTask) -> RunRow:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - the worker itself died (BrokenProcessPool, MemoryError...)
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
