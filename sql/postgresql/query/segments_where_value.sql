-- For sql/postgresql/query/segments_where_hits.sql: the reading of metric {i} at position
-- u.o of an aligned segment's arrays (m), decoded as every segment read does (whole
-- numbers over 10^decimals). A subscript of an array in memory is a step, not a scan.
CASE WHEN m.decimals{i} > 0 THEN m.arr{i}[u.o] / 10::double precision ^ m.decimals{i}
     ELSE m.arr{i}[u.o] END
