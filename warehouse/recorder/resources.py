"""Resource use of runs and steps: CPU time, peak RSS and bytes read/written.

A :class:`Probe` takes a *snapshot* of the process (a plain tuple, see ``SNAPSHOT_FIELDS``)
when a run or step starts and another when it ends; :func:`usage` turns the two into the
``runs``/``step_runs`` resource columns. All figures are for the whole process (every
thread), as psutil reports them: a step that fans out to numpy or DuckDB threads is charged
for that work, and so is anything running concurrently.

Cost matters here (a step must cost under 20 µs, and one psutil snapshot of
``cpu_times`` + ``memory_info`` + ``io_counters`` costs ~100 µs), so on Linux the probe
makes one ``getrusage`` call and one ``pread`` of ``/proc/self/statm`` on a descriptor kept
open (~4 µs). ``getrusage`` carries the counters psutil reads from ``/proc/self/io``: the
kernel fills ``ru_inblock``/``ru_oublock`` with ``read_bytes``/``write_bytes`` (minus
cancelled writes) in 512-byte units (``kernel/sys.c``, ``task_io_get_inblock``). Bytes are
those that reached the storage layer: reads served from the page cache count 0. Elsewhere
the probe asks psutil for RSS and I/O.

:class:`Sampler` is the optional background sampling of ``process.cpu_percent`` and
``process.rss_bytes`` (off by default).
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import threading
from collections.abc import Callable

import psutil

log = logging.getLogger("warehouse.recorder")

#: Order of the values in a snapshot tuple.
SNAPSHOT_FIELDS = ("cpu_user_us", "cpu_system_us", "max_rss_bytes", "rss_bytes",
                   "read_bytes", "written_bytes")
Snapshot = tuple[int, int, int, int, "int | None", "int | None"]

_LINUX = sys.platform.startswith("linux")
# ru_maxrss is in KiB on Linux and in bytes on macOS (getrusage(2) on each).
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_getrusage = resource.getrusage
_SELF = resource.RUSAGE_SELF
_pread = os.pread


class Probe:
    """Cheap snapshots of this process's resource counters; safe to share between threads.

    The open handles live in one tuple ``(pid, statm_fd, psutil.Process)`` that is built
    whole and then published by a single assignment, so a thread never sees half of it (the
    race that raised AttributeError when threads started runs at once). Opening is
    serialised by a lock; the fast path takes no lock.
    """

    def __init__(self) -> None:
        self._state: tuple[int, int | None, psutil.Process | None] = (-1, None, None)
        self._lock = threading.Lock()

    def _opened(self) -> tuple[int, int | None, psutil.Process | None]:
        # A descriptor on /proc/self/statm names the process that opened it, so it is
        # reopened after a fork (checked by pid, see snapshot()).
        with self._lock:
            state = self._state
            pid = os.getpid()
            if state[0] == pid:  # another thread opened it while we waited
                return state
            statm = None
            if _LINUX:
                try:
                    statm = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
                except OSError:  # /proc not mounted: psutil will say why if it cannot either
                    statm = None
            self._state = fresh = (pid, statm, psutil.Process())
            # The old descriptor is the parent's, inherited by fork: only this (child)
            # process's threads could hold it, and they all reopen through this lock.
            if state[1] is not None:
                try:
                    os.close(state[1])
                except OSError:
                    pass
            return fresh

    def snapshot(self) -> Snapshot:
        """(cpu_user_us, cpu_system_us, max_rss_bytes, rss_bytes, read_bytes, written_bytes)."""
        state = self._state
        if state[0] != os.getpid():
            state = self._opened()
        ru = _getrusage(_SELF)
        statm = state[1]
        if statm is not None:
            return (int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6),
                    ru.ru_maxrss * _MAXRSS_UNIT,
                    int(_pread(statm, 128, 0).split()[1]) * _PAGE_SIZE,
                    ru.ru_inblock * 512, ru.ru_oublock * 512)
        process = state[2]
        read = written = None
        try:
            io = process.io_counters()
            read, written = io.read_bytes, io.write_bytes
        except (AttributeError, psutil.Error):  # macOS has no per-process I/O counters
            pass
        return (int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6), ru.ru_maxrss * _MAXRSS_UNIT,
                process.memory_info().rss, read, written)

    def counters(self) -> Snapshot:
        """A snapshot without the current RSS (0), i.e. one ``getrusage`` call on Linux: what
        steps take at their start, and at their end when they were short (see
        ``STEP_RSS_MIN_NS``)."""
        state = self._state
        if _LINUX and state[1] is not None and state[0] == os.getpid():
            ru = _getrusage(_SELF)
            return (int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6),
                    ru.ru_maxrss * _MAXRSS_UNIT, 0, ru.ru_inblock * 512, ru.ru_oublock * 512)
        return self.snapshot()


#: Steps shorter than this do not read the current RSS at their end (a syscall costing a
#: few µs, the biggest part of a short step's cost); their peak_rss_bytes is then only known
#: when they raised the process high-water mark, else None.
STEP_RSS_MIN_NS = 1_000_000

#: One probe per process, shared by every thread (see Probe).
PROBE = Probe()


def usage(before: Snapshot, after: Snapshot, sampled_peak: int = 0) -> dict[str, int | None]:
    """Resource columns for the interval between two snapshots.

    Peak RSS: when the process high-water mark (``ru_maxrss``) rose during the interval, the
    new mark *is* the interval's peak. Otherwise the true peak is unknown (it lies below the
    old mark), and the best lower bound is the largest RSS seen: at either end or sampled;
    None when no RSS was read (steps shorter than ``STEP_RSS_MIN_NS`` skip the read).
    """
    if after[2] > before[2]:
        peak = after[2]
    else:
        peak = max(before[3], after[3], sampled_peak) or None
    return {
        "cpu_user_us": max(after[0] - before[0], 0),
        "cpu_system_us": max(after[1] - before[1], 0),
        "peak_rss_bytes": peak,
        "read_bytes": None if after[4] is None else max(after[4] - before[4], 0),
        "written_bytes": None if after[5] is None else max(after[5] - before[5], 0),
    }


class Sampler:
    """Samples CPU % and RSS every ``interval`` seconds on a daemon thread.

    ``on_sample(cpu_percent, rss_bytes)`` is called from that thread; :meth:`sample` takes one
    sample now (tests use it instead of waiting for the timer).
    """

    def __init__(self, interval: float, on_sample: Callable[[float, int], None]):
        if interval <= 0:
            raise ValueError("sample_interval must be positive (seconds)")
        self.interval = interval
        self._on_sample = on_sample
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only sets the reference point
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, name="warehouse-sampler",
                                        daemon=True)
        self._thread.start()
        return self

    def sample(self) -> tuple[float, int]:
        """Take one sample, hand it to ``on_sample`` and return it."""
        cpu = self._process.cpu_percent(None)
        rss = self._process.memory_info().rss
        self._on_sample(cpu, rss)
        return cpu, rss

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # sampling must never take the recipe down
                log.debug("resource sample failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
