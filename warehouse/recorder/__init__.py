"""Recording recipe runs: the instrumentation API.

>>> from warehouse.recorder import recipe_run
>>> with recipe_run(wh, "etl-daily", params={"day": "2026-11-25"}) as run:
...     with run.step("extract"):
...         ...
...     with run.step("transform") as step:
...         step.metric("rows", 120_000)

Or with decorators (the step records itself inside whatever run is current)::

    from warehouse import recorder

    @recorder.step("extract")
    def extract(): ...

    @recorder.recipe("etl-daily")
    def main(): extract()

One :class:`Recorder` per Warehouse object (or per ``WAREHOUSE_URL`` when no Warehouse is
given) owns the buffer and its writer thread; see docs/recording.md.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from warehouse.recorder.buffer import Buffer, WarehouseSink
from warehouse.recorder.replay import replay_spill
from warehouse.recorder.run import RecipeRun, StepRun, current_run, current_step, uuid7
from warehouse.recorder.spill import default_spill_dir, read_spill
from warehouse.recorder.stale import stale_runs
from warehouse.timeparse import interval_us


class Recorder:
    """Buffers what runs record and writes it to one warehouse in the background.

    ``wh``: the Warehouse to write through (in one process, all writes to a DuckDB file must
    go through one object); without it a Warehouse is opened from ``url``/``WAREHOUSE_URL``
    when first needed, and — for single-writer engines — closed whenever no run is active,
    so that other processes can take the file between runs.
    ``spill_dir``: where records go while the database is unreachable (``WAREHOUSE_SPILL_DIR``
    or ``./.warehouse-spill``). ``capacity``/``flush_at``/``flush_interval``: see
    :class:`~warehouse.recorder.buffer.Buffer`. ``heartbeat``: how often a running run
    refreshes ``runs.last_seen_at`` ('30s'; done by the writer thread). ``replay_on_start``:
    replay closed spill files (of crashed or earlier processes) on the writer thread's first
    pass (or at the first flush when there is no thread).
    """

    def __init__(self, wh=None, *, url: str | None = None, spill_dir=None,
                 capacity: int = 100_000, flush_at: int | None = None,
                 flush_interval: float | None = 1.0, heartbeat="30s",
                 replay_on_start: bool = True):
        self.sink = WarehouseSink(wh, url)
        self.heartbeat_us = interval_us(heartbeat)
        self._active: dict[str, RecipeRun] = {}
        self._lock = threading.Lock()
        self.buffer = Buffer(self.sink, spill_dir=spill_dir, capacity=capacity,
                             flush_at=flush_at, interval=flush_interval,
                             replay_on_start=replay_on_start, idle=lambda: not self._active)
        self.buffer.tickers.append(self._beat)
        self.closed = False
        _live.add(self)

    @property
    def stats(self) -> dict:
        """Counters: written, spilled, replayed, rejected, overflows, db_errors, lost,
        dropped_values (NaN/inf metric values)."""
        return dict(self.buffer.stats)

    def recipe_run(self, name: str, **options: Any) -> RecipeRun:
        """A :class:`RecipeRun` recorded by this recorder (options: see RecipeRun)."""
        return RecipeRun(self, name, **options)

    def flush(self) -> dict:
        """Write everything buffered now, trying the database even while backing off."""
        return self.buffer.flush(force=True)

    def close(self) -> dict:
        """Flush, stop the writer thread and release the spill file; returns the stats."""
        self.closed = True
        stats = self.buffer.close()
        self.buffer.release()
        _live.discard(self)
        return stats

    # -- called by runs -------------------------------------------------------------------
    def _run_started(self, run: RecipeRun) -> None:
        with self._lock:
            self._active[run.run_id] = run

    def _run_finished(self, run: RecipeRun) -> None:
        with self._lock:
            self._active.pop(run.run_id, None)
            idle = not self._active
        # Context exit flushes. It respects the backoff: if the database was just found down,
        # the rows go straight to the spill file instead of waiting for another failure.
        self.buffer.flush(force=False, shared=True)
        if idle:
            self.buffer.release()

    def _beat(self) -> None:
        now = time.time_ns() // 1000
        with self._lock:
            runs = list(self._active.values())
        for run in runs:
            if now - run.last_beat_us >= self.heartbeat_us and run.status == "running":
                self.buffer.add(("runs", run.heartbeat_row(now)))


_live: weakref.WeakSet[Recorder] = weakref.WeakSet()
_by_warehouse: dict[int, Recorder] = {}
_default: list[Recorder] = []
_registry_lock = threading.Lock()


def recorder_for(wh=None) -> Recorder:
    """The shared Recorder of a Warehouse object (created on first use), or with ``wh=None``
    the process's default Recorder for ``WAREHOUSE_URL``."""
    if wh is not None:  # the common case without the lock: threads starting runs at once
        recorder = _by_warehouse.get(id(wh))  # would queue on it behind a busy writer
        if recorder is not None and not recorder.closed and recorder.sink.get() is wh:
            return recorder
    with _registry_lock:
        if wh is None:
            if not _default or _default[0].closed:
                _default[:] = [Recorder()]
            return _default[0]
        recorder = _by_warehouse.get(id(wh))
        if recorder is None or recorder.closed or recorder.sink.get() is not wh:
            recorder = _by_warehouse[id(wh)] = Recorder(wh)
        return recorder


def recipe_run(wh, name: str, **options: Any) -> RecipeRun:
    """Record one run of recipe ``name`` through ``wh`` (a Warehouse; None for WAREHOUSE_URL).

    Options: ``params``, ``attributes``, ``labels``, ``run_id``, ``resources`` (default True),
    ``sample_interval`` (seconds, default off). This is what ``Warehouse.recipe_run`` calls.
    """
    return recorder_for(wh).recipe_run(name, **options)


def shutdown() -> None:
    """Flush and close every recorder of this process (also run at interpreter exit)."""
    with _registry_lock:
        recorders = list(_live)
        _by_warehouse.clear()
        _default.clear()
    for recorder in recorders:
        recorder.close()


atexit.register(shutdown)


def _forget_after_fork() -> None:
    # A forked child has none of the parent's threads, and must not append to the parent's
    # (locked) spill file: it starts with fresh recorders.
    _live.clear()
    _by_warehouse.clear()
    _default.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


# -- decorators ---------------------------------------------------------------------------
def _decorate(fn: Callable, enter: Callable[[], Any]) -> Callable:
    """Wrap ``fn`` (sync or async) so that it runs inside ``enter()``'s context manager, or
    directly when ``enter()`` returns None."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args, **kwargs):
            manager = enter()
            if manager is None:
                return await fn(*args, **kwargs)
            with manager:
                return await fn(*args, **kwargs)
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        manager = enter()
        if manager is None:
            return fn(*args, **kwargs)
        with manager:
            return fn(*args, **kwargs)
    return wrapper


def step(name: str | Callable | None = None, *, attempts: int = 1,
         retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
         wait: float = 0.0, backoff: float = 2.0, **step_options: Any):
    """Decorator: each call of the function is a step of the current run (named ``name``,
    default the function's name). Outside a run the function just runs. With ``attempts`` >
    1, failures matching ``retry_on`` are retried, each try recorded as an attempt."""
    if callable(name):  # used bare: @step
        return step()(name)

    def decorate(fn: Callable) -> Callable:
        step_name = name or fn.__name__
        if attempts > 1:
            def attempts_of(run):
                return run.retry(step_name, attempts=attempts, retry_on=retry_on, wait=wait,
                                 backoff=backoff, **step_options)

            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def retrying_async(*args, **kwargs):
                    run = current_run()
                    if run is None:
                        return await fn(*args, **kwargs)
                    for attempt in attempts_of(run):
                        with attempt:
                            return await fn(*args, **kwargs)
                    return None  # unreachable: the last attempt's failure propagates
                return retrying_async

            @functools.wraps(fn)
            def retrying(*args, **kwargs):
                run = current_run()
                if run is None:
                    return fn(*args, **kwargs)
                for attempt in attempts_of(run):
                    with attempt:
                        return fn(*args, **kwargs)
                return None  # unreachable: the last attempt's failure propagates
            return retrying

        def enter():
            run = current_run()
            return None if run is None else run.step(step_name, **step_options)
        return _decorate(fn, enter)
    return decorate


def recipe(name: str | Callable | None = None, *, wh=None, **options: Any):
    """Decorator: each call of the function is one recorded run of recipe ``name`` (default
    the function's name) through ``wh`` (default: WAREHOUSE_URL)."""
    if callable(name):  # used bare: @recipe
        return recipe()(name)

    def decorate(fn: Callable) -> Callable:
        recipe_name = name or fn.__name__
        return _decorate(fn, lambda: recipe_run(wh, recipe_name, **options))
    return decorate


def metric(name: str, value: float, **labels: str) -> None:
    """Record a metric on the current step (else the current run); outside a run, nothing."""
    target = current_step() or current_run()
    if target is not None:
        target.metric(name, value, **labels)


__all__ = [
    "Buffer",
    "RecipeRun",
    "Recorder",
    "StepRun",
    "current_run",
    "current_step",
    "default_spill_dir",
    "metric",
    "read_spill",
    "recipe",
    "recipe_run",
    "recorder_for",
    "replay_spill",
    "shutdown",
    "stale_runs",
    "step",
    "uuid7",
]
