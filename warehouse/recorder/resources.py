"""Resource use of runs and steps: CPU time, peak RSS and bytes read/written.

A :class:`Probe` takes a *snapshot* of the process (a plain tuple, see ``SNAPSHOT_FIELDS``)
when a run or step starts and another when it ends; :func:`usage` turns the two into the
``runs``/``step_runs`` resource columns. All figures are for the whole process (every
thread), as psutil reports them: a step that fans out to numpy or DuckDB threads is charged
for that work, and so is anything running concurrently.

On Linux the probe reads the same kernel sources psutil reads (``getrusage``,
``/proc/self/statm``, ``/proc/self/io``) through descriptors kept open, because one psutil
snapshot (``cpu_times`` + ``memory_info`` + ``io_counters``) costs ~100 µs here and a step
must cost under 20 µs. Elsewhere it falls back to psutil.

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

# ru_maxrss is in KiB on Linux and in bytes on macOS (getrusage(2) on each).
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Probe:
    """Cheap snapshots of this process's resource counters (~4 µs on Linux)."""

    def __init__(self) -> None:
        self._pid = -1
        self._statm: int | None = None
        self._io: int | None = None
        self._io_fields: tuple[int, int] | None = None
        self._psutil: psutil.Process | None = None

    def _open(self) -> None:
        # Descriptors on /proc/self/... name the process that opened them, so they are
        # reopened after a fork (checked by pid, see snapshot()).
        for fd in (self._statm, self._io):
            if fd is not None:
                os.close(fd)
        self._statm = self._io = self._io_fields = None
        self._pid = os.getpid()
        self._psutil = psutil.Process()
        try:
            self._statm = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            pass
        try:
            self._io = os.open("/proc/self/io", os.O_RDONLY)
            tokens = os.pread(self._io, 512, 0).split()
            self._io_fields = (tokens.index(b"read_bytes:") + 1,
                               tokens.index(b"write_bytes:") + 1)
        except (OSError, ValueError):  # not Linux, or /proc/self/io hidden (some sandboxes)
            if self._io is not None:
                os.close(self._io)
            self._io = None

    def snapshot(self) -> Snapshot:
        """(cpu_user_us, cpu_system_us, max_rss_bytes, rss_bytes, read_bytes, written_bytes)."""
        if self._pid != os.getpid():
            self._open()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        if self._statm is not None:
            rss = int(os.pread(self._statm, 128, 0).split()[1]) * _PAGE_SIZE
        else:
            rss = self._psutil.memory_info().rss
        read = written = None
        if self._io is not None:
            tokens = os.pread(self._io, 512, 0).split()
            read, written = int(tokens[self._io_fields[0]]), int(tokens[self._io_fields[1]])
        else:
            try:
                io = self._psutil.io_counters()
                read, written = io.read_bytes, io.write_bytes
            except (AttributeError, psutil.Error):  # macOS has no per-process I/O counters
                pass
        return (int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6), ru.ru_maxrss * _MAXRSS_UNIT,
                rss, read, written)


#: One probe per process; snapshots are read-only so threads can share it.
PROBE = Probe()


def usage(before: Snapshot, after: Snapshot, sampled_peak: int = 0) -> dict[str, int | None]:
    """Resource columns for the interval between two snapshots.

    Peak RSS: when the process high-water mark (``ru_maxrss``) rose during the interval, the
    new mark *is* the interval's peak. Otherwise the true peak is unknown (it lies below the
    old mark), and the best lower bound is the largest RSS seen: at either end or sampled.
    """
    if after[2] > before[2]:
        peak = after[2]
    else:
        peak = max(before[3], after[3], sampled_peak)
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
