"""Housekeeping routes: jobs, retention policies, chunks, rollups."""

from __future__ import annotations

import inspect
from dataclasses import asdict

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from warehouse.server.api_read import no_nul
from warehouse.server.auth import require
from warehouse.server.deps import TABLE_RESPONSES, table_response, warehouse

router = APIRouter(tags=["admin"], dependencies=[Depends(no_nul)])
_read, _admin = [Depends(require("read"))], [Depends(require("admin"))]


def _job_run(run) -> dict:
    return asdict(run) if hasattr(run, "__dataclass_fields__") else dict(run)


@router.get("/jobs", summary="Registered jobs and when they are next due",
            responses=TABLE_RESPONSES, dependencies=_read)
def list_jobs(request: Request):
    """job, schedule, sql_only, last_started, next_due, description."""
    from warehouse import jobs

    return table_response(request, jobs.list_jobs(warehouse(request)))


@router.get("/jobs/runs", summary="Job run history, newest first", responses=TABLE_RESPONSES,
            dependencies=_read)
def job_runs(request: Request, job: str | None = None,
             limit: int = Query(50, ge=1, le=10_000)):
    """Recent runs: run_id, job, started_at, finished_at, status, rows_affected, error..."""
    return table_response(request, warehouse(request).job_runs(job, limit))


class JobOptions(BaseModel):
    """Options of one job run."""

    now: str | None = Field(None, description="the job's present instead of the wall clock "
                                              "(ISO-8601, for backfills)")
    timeout: float | None = Field(None, gt=0, le=86_400)


@router.post("/jobs/{name}/run", summary="Run a job now", dependencies=_admin)
def run_job(request: Request, name: str = Path(..., description="a job of GET /jobs"),
            options: JobOptions | None = None) -> dict:
    """Run one job now, recorded in job_runs; ``skipped`` if it is already running."""
    options = options or JobOptions()
    kwargs = {k: v for k, v in options.model_dump().items() if v is not None}
    return _job_run(warehouse(request).run_job(name, **kwargs))


@router.post("/rollups/refresh", summary="Bring the rollups up to date", dependencies=_admin)
def refresh_rollups(request: Request, now: str | None = None) -> dict:
    """Run the refresh_rollups job now."""
    return _job_run(warehouse(request).refresh_rollups(now=now))


@router.get("/retention", summary="Retention policies", responses=TABLE_RESPONSES,
            dependencies=_read)
def retention_policies(request: Request):
    """table_name, metric, keep, keep_us, archive, updated_at."""
    return table_response(request, warehouse(request).retention_policies())


class RetentionPolicy(BaseModel):
    """Keep ``table`` (or one ``metric`` of points) for ``keep``."""

    table: str = Field(..., description="points, runs or step_runs")
    keep: str = Field(..., description="an interval: '30d', '12h'")
    archive: bool = Field(False, description="write chunks to Parquet before dropping them")
    metric: str | None = None


@router.put("/retention", summary="Set a retention policy", dependencies=_admin)
def set_retention(request: Request, policy: RetentionPolicy) -> dict:
    """Create or replace a policy."""
    result = warehouse(request).set_retention(policy.table, policy.keep, archive=policy.archive,
                                              metric=policy.metric)
    return result if isinstance(result, dict) else {"result": result}


@router.delete("/retention", summary="Remove a retention policy", dependencies=_admin)
def remove_retention(request: Request, table: str, metric: str | None = None) -> dict:
    """Remove a policy; ``removed`` says whether one existed."""
    from warehouse import jobs

    return {"removed": bool(jobs.remove_retention(warehouse(request), table, metric))}


@router.get("/chunks", summary="Chunks of a hypertable", responses=TABLE_RESPONSES,
            dependencies=_read)
def show_chunks(request: Request, table: str = "points"):
    """chunk_name, range_start, range_end, rows."""
    return table_response(request, warehouse(request).show_chunks(table))


@router.delete("/chunks", summary="Drop old chunks", dependencies=_admin)
def drop_chunks(request: Request, table: str = Query(..., description="points, runs, step_runs"),
                older_than: str = Query(..., description="ISO-8601 or relative ('now-90d')"),
                force: bool | None = Query(None, description="passed on where supported"),
                dry_run: bool | None = Query(None, description="list, do not drop (where "
                                                                 "supported)")) -> dict:
    """Drop whole chunks of ``table`` that end at or before ``older_than``."""
    wh = warehouse(request)
    accepted = inspect.signature(wh.drop_chunks).parameters
    options = {k: v for k, v in (("force", force), ("dry_run", dry_run))
               if v is not None and k in accepted}
    if any(v is not None and k not in accepted for k, v in (("force", force),
                                                            ("dry_run", dry_run))):
        raise ValueError("this warehouse version's drop_chunks takes no force/dry_run")
    return {"dropped": list(wh.drop_chunks(table, older_than, **options))}


@router.get("/rollups", summary="Rollup tiers: watermark, rows, pending invalidations",
            responses=TABLE_RESPONSES, dependencies=_read)
def rollup_state(request: Request):
    """Per tier: rollup, source, bucket_us, watermark, rows, pending invalidations."""
    from warehouse import jobs

    return table_response(request, jobs.rollup_state(warehouse(request)))


@router.get("/archive", summary="The Parquet archive manifest", responses=TABLE_RESPONSES,
            dependencies=_read)
def archive_manifest(request: Request):
    """Every archived unit: table, chunk, metric, rows, min/max ts, bytes, sha256, verified,
    archived/verified/dropped times, hold_until, root, path."""
    from warehouse import jobs

    return table_response(request, jobs.archive_manifest(warehouse(request)))
