-- wh.frame where= without buckets, a frame of many series (query/frame_where.py; fewer:
-- common/query/frame_where_probe.sql), no compressed segment in the range: long rows (n = hit
-- number in (grp, t) order, t, grp, m = metric code, v = value), scattered into the wide frame
-- by NumPy; DuckDB hands them over as vectors, so ten times the rows costs less than ten
-- FILTER aggregates and a GROUP BY over them, and the hash join on (grp, ts) holds one row per
-- hit where the probe's held one per (hit, series) (TSBS high-cpu-all).
-- The readings join the hits on (grp, ts): the hash table holds one row per hit. Each point
-- finds its group and metric through {grp} and {m}: arrays indexed by series_id for a frame
-- of many series with dense ids (joining the mapping of 1,000 series cost as much as the
-- scan), else the mapping's columns, joined by {series_mapping} (small: a cheap join).
-- DISTINCT: a hit counts once even if a relation listed a point twice.
-- Placeholders: {source} {series_mapping} (empty when {grp} and {m} read arrays) {grp} {m}
-- {hit_where} {where} {op}.
WITH h AS MATERIALIZED (
    SELECT h_ts, h_grp, row_number() OVER (ORDER BY h_grp, h_ts) - 1 AS h_n
      FROM (SELECT DISTINCT points.ts AS h_ts, {grp} AS h_grp
              FROM {source} {series_mapping}
             WHERE {hit_where} AND points.value {op} :where_value) AS hit
)
SELECT h.h_n AS n, h.h_ts AS t, h.h_grp AS grp, {m} AS m, points.value AS v
  FROM {source} {series_mapping}
  JOIN h ON h.h_grp = {grp} AND h.h_ts = points.ts
 WHERE {where}
