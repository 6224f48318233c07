"""A pool of worker processes that maps a function over tasks and yields results in order.

Preparing a dataset is embarrassingly parallel (decode, crop, align one image at a time), but
its output must be written in a fixed order. :class:`WorkerPool` gives exactly that:
``pool.imap(fn, tasks)`` runs ``fn`` on each task in ``workers`` processes and yields the
results in task order. With one worker it runs in this process (no start-up cost, easy to
debug and to test).

Start method: work that needs torch (MTCNN) runs in *spawned* processes, because forking a
process whose OpenMP runtime is already initialised can deadlock the child; pure PIL/numpy
work runs in *forked* processes where the OS has fork (instant start). Workers ignore
Ctrl-C: the parent gets it, and leaving the ``with`` block terminates them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from facegan.core.errors import FaceganError

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The number of CPU cores this process may use (its affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_workers(workers: int | None) -> int:
    """``workers`` checked (None = every core)."""
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise FaceganError(f"--workers must be a positive whole number, got {workers!r}")
    return workers


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a SIGKILLed `prepare` must not leave
    workers behind that fail later with BrokenPipe tracebacks); elsewhere a no-op."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def _init_worker(uses_torch: bool) -> None:
    """Runs once in each worker: die with the parent; leave Ctrl-C to it; one torch thread."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if uses_torch:
        import torch

        torch.set_num_threads(1)


class WorkerPool:
    """``workers`` processes (or this one) mapping a function over tasks, results in order.

    Use as a context manager; ``fn`` must be a module-level function and tasks and results
    must pickle. ``uses_torch`` selects the spawn start method and one torch thread per
    worker (also applied, and undone afterwards, when running in this process).
    """

    def __init__(self, workers: int, uses_torch: bool = False) -> None:
        self.workers = check_workers(workers)
        self.uses_torch = uses_torch
        self._pool = None
        self._saved_threads: int | None = None

    def __enter__(self) -> "WorkerPool":
        if self.workers > 1:
            methods = multiprocessing.get_all_start_methods()
            method = "fork" if "fork" in methods and not self.uses_torch else "spawn"
            ctx = multiprocessing.get_context(method)
            self._pool = ctx.Pool(self.workers, initializer=_init_worker,
                                  initargs=(self.uses_torch,))
        elif self.uses_torch:
            import torch

            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        return self

    def imap(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        """``fn(task)`` for each task, in task order."""
        if self._pool is None:
            for task in tasks:
                yield fn(task)
        else:
            yield from self._pool.imap(fn, tasks)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool is not None:
            if exc_type is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
            self._pool = None
        if self._saved_threads is not None:
            import torch

            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None
