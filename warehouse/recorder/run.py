"""Recipe runs and their steps as context managers: what gets recorded, and when.

A :class:`RecipeRun` writes a ``runs`` row when it starts (status ``running``) and again when
it ends; every :class:`StepRun` does the same in ``step_runs``. Metrics become ``points``.
Nothing here touches the database: rows are small dicts and tuples handed to the recorder's
buffer (see ``buffer.py``), so the cost stays on the order of microseconds.

Time: each run anchors the wall clock once at its start and measures everything after with
``time.perf_counter_ns``, so ``started_at + duration_us = finished_at`` exactly, and clock
steps (NTP) during a run do not produce negative durations.
"""

from __future__ import annotations

import itertools
import socket
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Self

from warehouse.config import MAX_NAME_LENGTH, MAX_VALUE_MAGNITUDE, MIN_VALUE_MAGNITUDE
from warehouse.recorder.fields import (  # noqa: F401 - uuid7 is part of this module's API
    Clock,
    _valid_names,
    as_json_object,
    check_labels,
    check_name,
    outcome,
    status_of,
    uuid7,
)
from warehouse.recorder.resources import PROBE, STEP_RSS_MIN_NS, Sampler, usage
from warehouse.recorder.safety import MAX_STEP_ID_LENGTH, check_text, internal_failure

if TYPE_CHECKING:
    from warehouse.recorder import Recorder

HOST = socket.gethostname()

_current_run: ContextVar[RecipeRun | None] = ContextVar("warehouse_run", default=None)
_current_step: ContextVar[StepRun | None] = ContextVar("warehouse_step", default=None)
_perf_ns = time.perf_counter_ns


class _Metrics:
    """``metric()`` shared by runs and steps."""

    __slots__ = ()

    def metric(self, name: str, value: float, **labels: str) -> None:
        """Record ``value`` now in series ``name`` with this run's/step's labels (recipe,
        step, host and custom ones) plus ``labels``; the point carries the run id.

        A NaN or infinite value, one beyond ±MAX_VALUE_MAGNITUDE (1e100), or a non-zero one
        closer to 0 than MIN_VALUE_MAGNITUDE (1e-150), is dropped
        (counted in the recorder's ``stats``): data must not break the recipe. A bad name or
        label raises ValueError, a non-number TypeError."""
        run = self._run
        if name not in _valid_names:
            check_name(name, "metric")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"metric {name!r} value must be a number, got "
                            f"{type(value).__name__}") from None
        if (value - value != 0.0 or abs(value) > MAX_VALUE_MAGNITUDE  # NaN, ±inf or huge
                or 0.0 < abs(value) < MIN_VALUE_MAGNITUDE):  # or so tiny its square underflows
            run._recorder.buffer.stats["dropped_values"] += 1
            return
        if labels:
            lab = self._merge_labels(labels)
        else:
            lab = self._lab or self._labels()
        # Inlined _Clock.point_ts(): this is the hot path (goal ≤ 3 µs per call).
        clock = run._clock
        ts = clock.wall0 + (_perf_ns() - clock.perf0) // 1000
        if ts <= clock.last:
            ts = clock.last + 1
        clock.last = ts
        run._push(("points", name, value, ts, run.run_id, lab))

    def _merge_labels(self, labels: dict) -> tuple:
        key = tuple(labels.items())
        cache = self._label_cache
        if cache is None:
            cache = self._label_cache = {}
        merged = cache.get(key)
        if merged is None:
            check_labels(labels)
            merged = tuple({**dict(self._labels()), **labels}.items())
            if len(cache) > 1000:  # bound memory if label values have high cardinality
                cache.clear()
            cache[key] = merged
        return merged


class StepRun(_Metrics):
    """One execution of a step inside a run; use as a context manager (see RecipeRun.step)."""

    __slots__ = ("_depends", "_lab", "_label_cache", "_label_extra", "_parent", "_res0",
                 "_retry_on", "_row", "_run", "_t0", "_token", "attempt", "attributes",
                 "name", "ordinal", "parent_step_id", "peak_sampled", "status", "step_id")

    def __init__(self, run: RecipeRun, name: str, *, attempt: int = 1,
                 parent: StepRun | None = None, labels: dict | None = None,
                 attributes: dict | None = None, depends_on=None, retry_on=()):
        if name not in _valid_names:
            check_name(name, "step")
        if attempt != 1 and (not isinstance(attempt, int) or attempt < 1):
            raise ValueError("attempt must be an integer ≥ 1")
        self._run = run
        self.name = name
        self.attempt = attempt
        self._parent = parent
        self._label_extra = check_labels(labels) if labels else ()
        self.attributes = as_json_object(attributes, "attributes") if attributes else {}
        self._depends = [d.step_id if isinstance(d, StepRun) else
                         check_text(str(d), "step", "depends_on", MAX_STEP_ID_LENGTH)
                         for d in depends_on] if depends_on else None
        self._retry_on = retry_on
        self._lab = None
        self._label_cache = None
        self.status = self.step_id = self.parent_step_id = None
        self.peak_sampled = 0

    def _labels(self) -> tuple:
        if self._lab is None:  # built on first use: most steps record no metric
            self._lab = tuple({**dict(self._run._labels()), "step": self.name,
                               **dict(self._label_extra)}.items())
        return self._lab

    def __enter__(self) -> Self:
        run = self._run
        if run.status != "running":
            raise RuntimeError("steps can only start inside a running recipe run")
        self.ordinal = ordinal = next(run._ordinals)
        self.step_id = step_id = f"{ordinal}:{self.name}"[:MAX_NAME_LENGTH]
        parent = self._parent or _current_step.get()
        self.parent_step_id = parent_id = parent.step_id if parent is not None \
            and parent._run is run else None
        self._token = _current_step.set(self)
        res0 = None
        if run.resources:
            try:
                res0 = PROBE.counters()
            except Exception as exc:  # noqa: BLE001 - the recipe goes on without resources
                internal_failure("the resource probe", exc)
        self._res0 = res0
        self._t0 = t0 = _perf_ns()
        self.status = "running"
        run._open_steps[ordinal] = self
        clock = run._clock
        self._row = row = {
            "run_id": run.run_id, "step_id": step_id, "parent_step_id": parent_id,
            "step": self.name, "ordinal": ordinal, "attempt": self.attempt,
            "started_at": clock.wall0 + (t0 - clock.perf0) // 1000, "status": "running",
            "host": HOST, "depends_on": self._depends,
            # A copy of its own: the user may change step.attributes before the row is written.
            "attributes": as_json_object(self.attributes, "attributes", strict=False)
            if self.attributes else None,
        }
        try:
            run._push(("steps", row))
        except Exception as exc:  # noqa: BLE001 - recording must not break the recipe
            internal_failure("recording a step start", exc)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        t1 = _perf_ns()
        run = self._run
        try:
            row = self._final_row(exc_type, exc, tb, t1)
            status = row["status"]
        except Exception as failure:  # noqa: BLE001 - never replace the recipe's outcome
            internal_failure("recording a step end", failure)
            status = status_of(exc_type, exc)
            row = None
        self.status = status
        run._open_steps.pop(self.ordinal, None)
        try:
            _current_step.reset(self._token)
        except ValueError:  # exited in another context (e.g. another asyncio task)
            _current_step.set(self._parent)
        if row is not None:
            try:
                run._push(("steps", row))
            except Exception as failure:  # noqa: BLE001
                internal_failure("recording a step end", failure)
        # Inside RecipeRun.retry(): a retryable failure is recorded, then swallowed so that
        # the loop can start the next attempt.
        return exc is not None and bool(self._retry_on) and isinstance(exc, self._retry_on)

    def _final_row(self, exc_type, exc, tb, t1: int) -> dict:
        clock = self._run._clock
        row = self._row
        if exc_type is None:
            row = {**row, "finished_at": clock.wall0 + (t1 - clock.perf0) // 1000,
                   "duration_us": (t1 - self._t0) // 1000, "status": "succeeded"}
            if self.attributes:
                row["attributes"] = as_json_object(self.attributes, "attributes", strict=False)
        else:
            status, error_type, message, trace = outcome(exc_type, exc, tb)
            attributes = as_json_object(self.attributes, "attributes", strict=False) or {}
            if trace:
                attributes["traceback"] = trace
            row = {**row, "finished_at": clock.wall0 + (t1 - clock.perf0) // 1000,
                   "duration_us": (t1 - self._t0) // 1000, "status": status,
                   "error_type": error_type, "error_message": message,
                   "attributes": attributes or None}
        if self._res0 is not None:
            try:
                after = PROBE.snapshot() if t1 - self._t0 >= STEP_RSS_MIN_NS \
                    else PROBE.counters()
                row.update(usage(self._res0, after, self.peak_sampled))
            except Exception as failure:  # noqa: BLE001 - the row goes without resources
                internal_failure("the resource probe", failure)
        return row


class RecipeRun(_Metrics):
    """One execution of a recipe. Create with ``recipe_run(wh, name, ...)``.

    ``params`` (JSON object) and ``attributes`` go to the ``runs`` row; ``labels`` are added to
    every metric of the run; ``resources`` records CPU/RSS/I/O per run and step;
    ``sample_interval`` (seconds) samples ``process.cpu_percent``/``process.rss_bytes``.
    """

    __slots__ = ("__weakref__", "_clock", "_lab", "_label_cache", "_label_extra", "_open_steps",
                 "_ordinals", "_push", "_recorder", "_res0", "_row", "_run", "_sampler", "_t0",
                 "_token", "attributes", "last_beat_us", "params", "peak_sampled", "recipe",
                 "resources", "run_id", "sample_interval", "status")

    def __init__(self, recorder: Recorder, recipe: str, *, params: dict | None = None,
                 attributes: dict | None = None, labels: dict | None = None,
                 run_id: str | uuid.UUID | None = None, resources: bool = True,
                 sample_interval: float | None = None):
        self._recorder = recorder
        self._run = self  # what steps and metric() reach for; a run is its own run
        self._push = recorder.buffer.add
        self.recipe = check_name(recipe, "recipe")
        self.run_id = str(uuid.UUID(str(run_id))) if run_id is not None else str(uuid7())
        self.params = as_json_object(params, "params") or {}
        self.attributes = as_json_object(attributes, "attributes") or {}
        self._label_extra = check_labels(labels)
        self.resources = resources
        self.sample_interval = sample_interval
        self.status: str | None = None
        self._lab = None
        self._label_cache: dict | None = None
        self._open_steps: dict[int, StepRun] = {}
        self._sampler: Sampler | None = None
        self.peak_sampled = 0

    def _labels(self) -> tuple:
        if self._lab is None:
            self._lab = tuple({"recipe": self.recipe, "host": HOST,
                               **dict(self._label_extra)}.items())
        return self._lab

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self.status is not None:
            raise RuntimeError("a RecipeRun can be entered only once")
        self._ordinals = itertools.count()
        outer = _current_run.get()
        if outer is not None:
            self.attributes.setdefault("parent_run_id", outer.run_id)
        self._res0 = None
        if self.resources:
            try:
                self._res0 = PROBE.snapshot()
            except Exception as exc:  # noqa: BLE001 - the recipe goes on without resources
                internal_failure("the resource probe", exc)
        self._clock = clock = Clock()
        self._t0 = clock.perf0
        self.status = "running"
        self.last_beat_us = clock.wall0
        self._row = {
            "run_id": self.run_id, "recipe": self.recipe, "started_at": clock.wall0,
            # Copies of their own, cleaned: run.params and run.attributes are the user's
            # dicts, which may change (even deep inside) before this row is written.
            "status": "running", "host": HOST,
            "params": as_json_object(self.params, "params", strict=False),
            "attributes": as_json_object(self.attributes, "attributes", strict=False) or None,
            "last_seen_at": clock.wall0,
        }
        self._token = _current_run.set(self)
        try:
            self._push(("runs", self._row))
            self._recorder._run_started(self)
        except Exception as exc:  # noqa: BLE001 - recording must not break the recipe
            internal_failure("recording a run start", exc)
        if self.sample_interval:
            try:
                self._sampler = Sampler(self.sample_interval, self._on_sample).start()
            except Exception as exc:  # noqa: BLE001
                internal_failure("starting the resource sampler", exc)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        t1 = _perf_ns()
        try:
            if self._sampler is not None:
                self._sampler.stop()
            row = self._final_row(exc_type, exc, tb, t1)
            status = row["status"]
        except Exception as failure:  # noqa: BLE001 - never replace the recipe's outcome
            internal_failure("recording a run end", failure)
            status = status_of(exc_type, exc)
            finished = self._clock.at(t1)
            row = dict(self._row, finished_at=finished, duration_us=(t1 - self._t0) // 1000,
                       status=status, last_seen_at=finished)
        self.status = status
        try:
            _current_run.reset(self._token)
        except ValueError:
            _current_run.set(None)
        try:
            self._push(("runs", row))
        except Exception as failure:  # noqa: BLE001
            internal_failure("recording a run end", failure)
        try:
            self._recorder._run_finished(self)
        except Exception as failure:  # noqa: BLE001
            internal_failure("flushing at a run end", failure)
        return False  # the recipe's exception, if any, propagates unchanged

    def _final_row(self, exc_type, exc, tb, t1: int) -> dict:
        status, error_type, message, trace = outcome(exc_type, exc, tb)
        finished = self._clock.at(t1)
        attributes = as_json_object(self.attributes, "attributes", strict=False) or {}
        if trace:
            attributes["traceback"] = trace
        row = dict(self._row, finished_at=finished, duration_us=(t1 - self._t0) // 1000,
                   status=status, error_type=error_type, error_message=message,
                   attributes=attributes or None, last_seen_at=finished)
        if self._res0 is not None:
            try:
                row.update(usage(self._res0, PROBE.snapshot(), self.peak_sampled))
            except Exception as failure:  # noqa: BLE001 - the row goes without resources
                internal_failure("the resource probe", failure)
        return row

    # -- API ------------------------------------------------------------------------------
    def step(self, name: str, *, attempt: int = 1, parent: StepRun | None = None,
             labels: dict | None = None, attributes: dict | None = None,
             depends_on=None) -> StepRun:
        """A step of this run, to use in ``with``. ``attempt`` > 1 marks a retry; ``parent``
        overrides the enclosing step (needed in threads that do not share the context);
        ``depends_on`` lists steps (or step ids) that had to finish first."""
        return StepRun(self, name, attempt=attempt, parent=parent, labels=labels,
                       attributes=attributes, depends_on=depends_on)

    def retry(self, name: str, *, attempts: int = 3,
              retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
              wait: float = 0.0, backoff: float = 2.0, **step_options) -> Iterator[StepRun]:
        """Attempts of one step, each recorded with its attempt number::

            for attempt in run.retry("load", attempts=3):
                with attempt:
                    load()

        A failure matching ``retry_on`` is recorded and the next attempt starts after ``wait``
        seconds (times ``backoff`` each time); the last attempt's failure propagates."""
        if attempts < 1:
            raise ValueError("attempts must be ≥ 1")
        retry_on = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        delay = wait
        for number in range(1, attempts + 1):
            step = StepRun(self, name, attempt=number,
                           retry_on=retry_on if number < attempts else (), **step_options)
            yield step
            if step.status != "failed":
                return
            if delay > 0:
                time.sleep(delay)
                delay *= backoff

    def flush(self) -> dict:
        """Write everything recorded so far now (normally the buffer does it in the
        background); returns the recorder's counters."""
        return self._recorder.flush()

    # -- background helpers (called from the recorder's and sampler's threads) ------------
    def heartbeat_row(self, now_us: int) -> dict:
        """The ``running`` row again with a fresh ``last_seen_at``."""
        self.last_beat_us = now_us
        return dict(self._row, last_seen_at=now_us)

    def _on_sample(self, cpu_percent: float, rss: int) -> None:
        self.peak_sampled = max(self.peak_sampled, rss)
        labels = dict(self._labels())
        steps = list(self._open_steps.values())
        for step in steps:
            step.peak_sampled = max(step.peak_sampled, rss)
        if steps:  # the innermost (most recently started) open step is "where we are"
            labels["step"] = max(steps, key=lambda s: s.ordinal).name
        lab = tuple(labels.items())
        ts = self._clock.point_ts()
        self._push(("points", "process.cpu_percent", float(cpu_percent), ts, self.run_id, lab))
        self._push(("points", "process.rss_bytes", float(rss), ts, self.run_id, lab))


def current_run() -> RecipeRun | None:
    """The innermost recipe run active in this context, or None."""
    return _current_run.get()


def current_step() -> StepRun | None:
    """The innermost step active in this context, or None."""
    return _current_step.get()
