-- 0005: a run is keyed by run_id alone (issue 9). On DuckDB runs has had PRIMARY KEY (run_id)
-- since 0001 and is not partitioned, so there is nothing to change; the revision exists so
-- both engines share one migration history.
SELECT 1;
