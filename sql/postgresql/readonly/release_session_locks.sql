-- After analyst SQL: session-level advisory locks are not undone by a rollback, and a query may
-- take one (pg_advisory_lock); release them so a pooled connection holds none.
SELECT pg_advisory_unlock_all()
