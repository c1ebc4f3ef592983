-- A wide write into copied ranges: rows of the copy at a (label set, instant) of the
-- staged rows (_stage_readings: ts, entity, m<col>...), within the batch's [:lo, :hi]. Any
-- means the batch adds metrics to a row already there, which the writer does not merge:
-- it deletes the copy instead (warehouse/backends/duckdb_readings.py). Column: count.
SELECT count(*) FROM readings AS r
  JOIN _stage_readings AS b ON r.entity = b.entity AND r.ts = b.ts
 WHERE r.ts >= :lo AND r.ts <= :hi
