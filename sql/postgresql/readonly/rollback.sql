-- Analyst SQL: the end of its transaction, sent with the run (nothing it did is kept: a
-- setting it changed with set_config(..., false) is undone too).
ROLLBACK
