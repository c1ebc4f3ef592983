"""The warehouse's own errors. Driver errors are translated into these at the backend seam."""

from __future__ import annotations

from dataclasses import dataclass


class WarehouseError(Exception):
    """Base class of every error the warehouse raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    """One problem in one input row: which row, which field, what was wrong."""

    row: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "batch"
        return f"{where}, field {self.field!r}: {self.message}"


class ValidationError(WarehouseError, ValueError):
    """Input rejected before anything was written. The whole batch is rejected.

    ``problems`` lists the first problems found (one per field and kind), ``count`` how many
    rows were bad in total.
    """

    def __init__(self, what: str, problems: list[FieldProblem], count: int | None = None):
        self.what = what
        self.problems = problems
        self.count = count if count is not None else len(problems)
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more kinds of problem)" if len(problems) > 5 else ""
        super().__init__(f"{what}: nothing written — {shown}{more}")


class UnknownNameError(WarehouseError, KeyError):
    """A table, metric, job or other name that the warehouse does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ReadOnlyError(WarehouseError):
    """A statement that would write was given to a read-only entry point."""


class QueryTimeoutError(ReadOnlyError):
    """Analyst SQL ran past its time limit (or waited too long for a lock) and was cancelled."""


class ResultTooLargeError(ReadOnlyError):
    """Analyst SQL returned more rows than the row cap; nothing is returned (no silent cut)."""


class TransientError(WarehouseError):
    """A failure worth retrying: the database is unreachable, locked or restarting."""


class TerminalError(WarehouseError):
    """A failure that retrying will not fix."""


class RetentionPolicyError(WarehouseError):
    """Chunks were to be dropped that a retention policy says must be archived (and the
    archive verified) first. ``table``, ``chunks`` (their names; ``chunk[metric]`` for one
    metric's rows) and ``reasons`` (name -> why) say which and why; ``force`` overrides."""

    def __init__(self, table: str, chunks: list[str], reasons: dict[str, str] | None = None):
        self.table = table
        self.chunks = list(chunks)
        self.reasons = dict(reasons or {})
        shown = ", ".join(f"{c} ({self.reasons[c]})" if c in self.reasons else c
                          for c in self.chunks[:20])
        more = f" and {len(self.chunks) - 20} more" if len(self.chunks) > 20 else ""
        super().__init__(
            f"refused to drop {len(self.chunks)} chunk(s) of {table} that its archive policy "
            f"requires archived first: {shown}{more}. Run the archive job first "
            f"(`warehouse jobs run archive`), or force the drop (their rows are then lost)")
