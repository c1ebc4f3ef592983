-- 0005: a run is keyed by run_id alone, a step by (run_id, step_id) (issue 9).
-- runs stays partitioned on started_at (chunks, retention and archive keep working), and
-- PostgreSQL requires the partition key in every unique index of a partitioned table, so
-- the primary key stays (run_id, started_at). Uniqueness of run_id is enforced by run_keys
-- (run_id PRIMARY KEY), kept by row triggers on runs (cloned to every chunk): a second row
-- for a run_id fails with unique_violation as a unique index would. Ingest moves a run whose
-- start was corrected (sql/postgresql/ingest/move_runs.sql) instead of adding a row.
-- Chunks dropped whole (DROP TABLE fires no row trigger) leave their keys behind; a key
-- whose row is gone is simply taken over by the next row with that run_id.
-- step_runs gets the same: step_keys (run_id, step_id) and move_step_runs.sql.

-- Existing duplicates merge into one row: the newest last_seen_at, then a terminal status,
-- then the latest start.
DELETE FROM runs AS r
 USING (SELECT run_id, started_at,
               row_number() OVER (PARTITION BY run_id
                                  ORDER BY last_seen_at DESC NULLS LAST,
                                           (status <> 'running') DESC,
                                           started_at DESC) AS n
          FROM runs) AS d
 WHERE r.run_id = d.run_id AND r.started_at = d.started_at AND d.n > 1;

CREATE TABLE run_keys (
    run_id     uuid        PRIMARY KEY,
    started_at timestamptz NOT NULL
);
INSERT INTO run_keys (run_id, started_at) SELECT run_id, started_at FROM runs;

-- Claim run_id for the row (p_run_id, p_started_at) now in runs; unique_violation if another
-- live row holds it. Each statement below takes a fresh snapshot (READ COMMITTED), so after
-- waiting on a concurrent writer's key it sees that writer's committed row.
CREATE FUNCTION wh_claim_run_key(p_run_id uuid, p_started_at timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_started timestamptz;
BEGIN
    INSERT INTO run_keys (run_id, started_at) VALUES (p_run_id, p_started_at)
    ON CONFLICT (run_id) DO NOTHING;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT started_at INTO v_started FROM run_keys WHERE run_id = p_run_id FOR UPDATE;
    IF v_started = p_started_at THEN
        RETURN;  -- already this row's (a cross-chunk move fires more than one trigger)
    END IF;
    IF EXISTS (SELECT 1 FROM runs WHERE run_id = p_run_id AND started_at = v_started) THEN
        RAISE EXCEPTION 'duplicate key value violates unique constraint "run_keys_pkey"'
            USING ERRCODE = 'unique_violation',
                  DETAIL = format('Key (run_id)=(%s) already exists (started_at %s).',
                                  p_run_id, v_started);
    END IF;
    UPDATE run_keys SET started_at = p_started_at WHERE run_id = p_run_id;
END
$$;

CREATE FUNCTION wh_run_keys_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM wh_claim_run_key(NEW.run_id, NEW.started_at);
    RETURN NULL;
END
$$;

CREATE FUNCTION wh_run_keys_after_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM run_keys WHERE run_id = OLD.run_id AND started_at = OLD.started_at;
    RETURN NULL;
END
$$;

CREATE FUNCTION wh_run_keys_after_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM run_keys WHERE run_id = OLD.run_id AND started_at = OLD.started_at;
    PERFORM wh_claim_run_key(NEW.run_id, NEW.started_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_key_insert AFTER INSERT ON runs
    FOR EACH ROW EXECUTE FUNCTION wh_run_keys_after_insert();
CREATE TRIGGER runs_key_delete AFTER DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION wh_run_keys_after_delete();
CREATE TRIGGER runs_key_update AFTER UPDATE OF run_id, started_at ON runs
    FOR EACH ROW
    WHEN (OLD.run_id IS DISTINCT FROM NEW.run_id OR OLD.started_at IS DISTINCT FROM NEW.started_at)
    EXECUTE FUNCTION wh_run_keys_after_update();

-- step_runs: the same, keyed by (run_id, step_id).
DELETE FROM step_runs AS r
 USING (SELECT run_id, step_id, started_at,
               row_number() OVER (PARTITION BY run_id, step_id
                                  ORDER BY (status <> 'running') DESC, finished_at DESC NULLS LAST,
                                           started_at DESC) AS n
          FROM step_runs) AS d
 WHERE r.run_id = d.run_id AND r.step_id = d.step_id AND r.started_at = d.started_at
   AND d.n > 1;

CREATE TABLE step_keys (
    run_id     uuid        NOT NULL,
    step_id    text        NOT NULL,
    started_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, step_id)
);
INSERT INTO step_keys (run_id, step_id, started_at)
SELECT run_id, step_id, started_at FROM step_runs;

CREATE FUNCTION wh_claim_step_key(p_run_id uuid, p_step_id text, p_started_at timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_started timestamptz;
BEGIN
    INSERT INTO step_keys (run_id, step_id, started_at) VALUES (p_run_id, p_step_id, p_started_at)
    ON CONFLICT (run_id, step_id) DO NOTHING;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT started_at INTO v_started FROM step_keys
     WHERE run_id = p_run_id AND step_id = p_step_id FOR UPDATE;
    IF v_started = p_started_at THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM step_runs WHERE run_id = p_run_id AND step_id = p_step_id
                                          AND started_at = v_started) THEN
        RAISE EXCEPTION 'duplicate key value violates unique constraint "step_keys_pkey"'
            USING ERRCODE = 'unique_violation',
                  DETAIL = format('Key (run_id, step_id)=(%s, %s) already exists (started_at %s).',
                                  p_run_id, p_step_id, v_started);
    END IF;
    UPDATE step_keys SET started_at = p_started_at
     WHERE run_id = p_run_id AND step_id = p_step_id;
END
$$;

CREATE FUNCTION wh_step_keys_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM wh_claim_step_key(NEW.run_id, NEW.step_id, NEW.started_at);
    RETURN NULL;
END
$$;

CREATE FUNCTION wh_step_keys_after_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM step_keys
     WHERE run_id = OLD.run_id AND step_id = OLD.step_id AND started_at = OLD.started_at;
    RETURN NULL;
END
$$;

CREATE FUNCTION wh_step_keys_after_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM step_keys
     WHERE run_id = OLD.run_id AND step_id = OLD.step_id AND started_at = OLD.started_at;
    PERFORM wh_claim_step_key(NEW.run_id, NEW.step_id, NEW.started_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER step_runs_key_insert AFTER INSERT ON step_runs
    FOR EACH ROW EXECUTE FUNCTION wh_step_keys_after_insert();
CREATE TRIGGER step_runs_key_delete AFTER DELETE ON step_runs
    FOR EACH ROW EXECUTE FUNCTION wh_step_keys_after_delete();
CREATE TRIGGER step_runs_key_update AFTER UPDATE OF run_id, step_id, started_at ON step_runs
    FOR EACH ROW
    WHEN (OLD.run_id IS DISTINCT FROM NEW.run_id OR OLD.step_id IS DISTINCT FROM NEW.step_id
          OR OLD.started_at IS DISTINCT FROM NEW.started_at)
    EXECUTE FUNCTION wh_step_keys_after_update();
