-- For sql/postgresql/query/segments_where_hits.sql: reading {i} of an aligned segment's
-- row, decoded as every segment read does (whole numbers over 10^decimals).
CASE WHEN m.decimals{i} > 0 THEN u.v{i} / 10::double precision ^ m.decimals{i} ELSE u.v{i} END
