-- Newest-first plans (warehouse/query/newest.py): parallel workers for the rest of the read's
-- transaction, {workers} = 0 (none) for a small window or DEFAULT. Launching two workers
-- cost ~9 ms on this machine, more than a statement over the last minutes of 100 series
-- does in all (TSBS groupby-orderby-limit over compressed segments: 17 ms parallel, 8 ms
-- serial, same statement, load 0.4); the planner, whose default parallel_setup_cost stands
-- for far less, chose workers once the window's rollup rows and segments added up.
SET LOCAL max_parallel_workers_per_gather TO {workers}
