"""One DuckDB file is one write fence in a process, however its URL spells the path (two
fences let two writers into one instance at once: DuckDB then aborts one transaction
instead of it waiting; review s7, R3). In-memory databases are each their own."""

from __future__ import annotations

from warehouse import Warehouse


def test_one_fence_per_file(tmp_path):
    one = Warehouse(f"duckdb:///{tmp_path}/w.duckdb")
    other = Warehouse(f"duckdb:///{tmp_path}/./w.duckdb")
    try:
        assert one.backend.write_fence is other.backend.write_fence
        assert one.backend.job_fence() is other.backend.job_fence()
    finally:
        one.close()
        other.close()


def test_in_memory_databases_are_fenced_apart():
    one, other = Warehouse("duckdb:///:memory:"), Warehouse("duckdb:///:memory:")
    try:
        assert one.backend.write_fence is not other.backend.write_fence
    finally:
        one.close()
        other.close()
