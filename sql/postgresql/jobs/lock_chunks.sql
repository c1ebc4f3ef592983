-- drop_chunks: until commit no chunk of :table is created or dropped by anyone else (the
-- transaction-scoped advisory lock that wh_ensure_chunk and wh_drop_chunks take), so the
-- chunks judged are exactly the chunks dropped.
SELECT pg_advisory_xact_lock(hashtext('wh_chunk:' || CAST(:table AS text)))
