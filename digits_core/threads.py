"""How many CPU threads torch uses, and how training threads share the machine.

One low-level module for the machine's side of training, below every model and job: the
thread count a process (`setup_torch_threads`) or a run (`ThreadShare`, picked once when
the run starts and kept to its end) gets, one thread for a small inference
(`few_threads`), training threads at a lower priority (`lower_thread_priority`), and
handing ended runs' memory back (`release_memory`). torch is imported only when a count
is set, so importing this costs nothing.
"""

from __future__ import annotations

import ctypes
import gc
import math
import os
import threading
import time

SMALL_BATCH = 64  # at or below this many images, inference runs on the calling thread alone

_threads_set = threading.Lock()
_threads_done = False


def default_threads() -> int:
    """Torch threads for a process that has the machine to itself (the CLI, the benchmark,
    a worker told its share): `$DIGITLAB_THREADS`, else every core."""
    env = os.environ.get("DIGITLAB_THREADS")
    if env:
        return max(1, int(env))
    return os.cpu_count() or 1


def training_threads(jobs: int) -> int:
    """Torch threads for one of `jobs` runs training at once in this process:
    `$DIGITLAB_THREADS`, else the cores shared out among them (at least one each).

    Two thread teams on two cores, or a team with a member the scheduler has parked, wait
    at every barrier: on 2 cores with the other one busy, a small CNN step took 378 ms on 2
    threads and 16 ms on 1. Alone, a run trains on every core (training threads run at a
    lower priority, so pages still come first: `jobs.lower_thread_priority`).
    """
    env = os.environ.get("DIGITLAB_THREADS")
    if env:
        return max(1, int(env))
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


BUSY_CORE = 0.3  # a core this busy with other work no longer counts as free


def free_cores(others: float, cores: int | None = None) -> int:
    """Cores a thread team can have while other work keeps `others` cores busy (at least 1).

    A core counts as taken once another process keeps it BUSY_CORE busy: a thread team
    stalls at every barrier while one of its threads waits for a core. Measured with the
    `fast` preset on 2 cores beside a process busy a share of each 50 ms: at 0.2 of a core
    two threads trained 6,100 images/s and one 5,300; at 0.3 about the same (4,400-4,900);
    at 0.4 one thread 4,700-5,300 and two 3,900-5,100.
    """
    cores = cores or os.cpu_count() or 1
    return max(1, cores - max(0, math.ceil(others - BUSY_CORE)))


def setup_torch_threads() -> None:
    """Set torch's thread count once per process (see default_threads)."""
    global _threads_done
    import torch

    with _threads_set:
        if not _threads_done:
            torch.set_num_threads(default_threads())
            _threads_done = True


class ThreadShare:
    """The cores shared among the torch runs training in this process, and left to others.

    With torch's OpenMP backend the thread count belongs to the calling thread (a thread
    takes the count last set in the process when it first runs torch, and keeps it after:
    measured with torch 2.13). A training thread enters the share when its run starts and
    gets `threads`: the count it was given (a continued run's recorded one, or a pinned
    one), else `training_threads(runs)`, fewer while other processes keep cores busy (what
    the machine spent beyond this process over the last `WINDOW_S`, from /proc/stat), since
    a thread team with a member waiting for a core stalls at every barrier. The count is
    picked once and kept to the run's end: a float sum split over another number of threads
    rounds differently, so a count that followed the load would make the curve depend on
    what else the machine did. Pages and other runs keep their own counts.
    """

    WINDOW_S = 2.0  # the machine's load is measured over at least half of this

    _lock = threading.Lock()
    _members = 0
    _last: tuple[float, float, float] | None = None  # (monotonic s, machine busy s, process cpu s)
    _others: float | None = None  # cores busy outside this process, last measured

    def __init__(self, threads: int = 0):
        self.threads = threads  # 0: picked on entering

    def __enter__(self) -> ThreadShare:
        with ThreadShare._lock:
            ThreadShare._members += 1
            if not self.threads:
                self.threads = self._pick()
        import torch

        torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc) -> None:
        with ThreadShare._lock:
            ThreadShare._members -= 1

    @classmethod
    def _pick(cls) -> int:
        n = training_threads(cls._members)
        if not os.environ.get("DIGITLAB_THREADS"):
            others = cls.look()
            if others is not None:
                n = min(n, free_cores(others))
        return n

    @classmethod
    def look(cls) -> float | None:
        """Cores busy outside this process since the last look (None: not known here).
        Called by `warm_up` too, so a first run is judged on the time since then."""
        sample = _cpu_sample()
        if sample is None:
            return None
        last = cls._last
        if last is None:
            cls._last = sample
        elif sample[0] - last[0] >= cls.WINDOW_S / 2:  # runs looking often share one window
            wall = sample[0] - last[0]
            cls._others = max(0.0, (sample[1] - last[1]) - (sample[2] - last[2])) / wall
            cls._last = sample
        return cls._others


def _cpu_sample() -> tuple[float, float, float] | None:
    """(now, CPU seconds the machine has been busy, CPU seconds of this process)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), time.process_time()


class few_threads:
    """Run a small inference on one thread. Torch's intra-op thread count is per calling
    thread here, so this leaves a training thread's pool alone; a one-image forward is
    faster without a thread team, and it does not queue behind the trainer's workers."""

    def __init__(self, n: int):
        self.small = n <= SMALL_BATCH

    def __enter__(self):
        if self.small:
            import torch

            self.old = torch.get_num_threads()
            if self.old != 1:
                torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.small and self.old != 1:
            import torch

            torch.set_num_threads(self.old)


def lower_thread_priority() -> None:
    """Make the calling thread (and the torch workers it will start) yield to interactive
    work: a server answering clicks and canvas predictions must not wait for a trainer.
    Niceness is per thread on Linux; `$DIGITLAB_TRAIN_NICE` (default 10, 0 = off)."""
    nice = int(os.environ.get("DIGITLAB_TRAIN_NICE", "10"))
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        pass  # not permitted here: train at normal priority


def release_memory() -> None:
    """Hand memory that ended runs left behind back to the system: a full garbage
    collection, then glibc's `malloc_trim` (freed memory otherwise stays in the process's
    heap and arenas, and a server's RSS only grows with each class)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the collection is what there is


__all__ = ["BUSY_CORE", "SMALL_BATCH", "ThreadShare", "default_threads", "few_threads", "free_cores",
           "lower_thread_priority", "release_memory", "setup_torch_threads", "training_threads"]
