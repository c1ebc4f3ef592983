-- The condition choosing a query's series in a scan of points (warehouse/query/catalog.py
-- series_filter: wh.points, wh.frame, and the raw points completing a rollup tier).
-- {ranges}: the ids with long runs as BETWEEN. DuckDB tests a range faster than a list of a
-- thousand ids, and a long list became a join (TSBS double-groupby-all, same process:
-- scan and partials 27 -> 23 ms; rollup edges, load 4.1: CPU 42 -> 30 ms).
{ranges}
