-- `warehouse grant analyst ROLE`: give a database role (made NOLOGIN if it does not exist;
-- an existing role keeps its LOGIN/NOLOGIN and password) SELECT on the analyst relations
-- that exist and nothing else, and make its sessions read-only with a statement timeout by
-- default. Refuses a role that is a superuser or may read server files, run programs or
-- signal other sessions. Reads the settings wh.analyst_role, wh.readonly_relations
-- (comma-separated) and wh.analyst_timeout (e.g. '60s'), set just before with
-- readonly/setting. Needs CREATEROLE (or superuser) and ownership of the relations.
DO $grant$
DECLARE
    analyst text := current_setting('wh.analyst_role');
    rel text;
    rel_oid regclass;
    rel_schema text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('wh_readonly_setup'));
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = analyst) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', analyst);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = analyst AND (rolsuper OR rolbypassrls))
       OR pg_has_role(analyst, 'pg_read_server_files', 'MEMBER')
       OR pg_has_role(analyst, 'pg_write_server_files', 'MEMBER')
       OR pg_has_role(analyst, 'pg_execute_server_program', 'MEMBER')
       OR pg_has_role(analyst, 'pg_signal_backend', 'MEMBER') THEN
        RAISE EXCEPTION 'role % is a superuser or may read files, run programs or signal '
            'sessions; an analyst role must be least-privilege', analyst;
    END IF;
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', analyst);
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', analyst,
                   current_setting('wh.analyst_timeout'));
    FOREACH rel IN ARRAY string_to_array(current_setting('wh.readonly_relations'), ',') LOOP
        rel_oid := to_regclass(rel);
        CONTINUE WHEN rel_oid IS NULL;
        SELECT n.nspname INTO rel_schema
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel_oid;
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', rel_schema, analyst);
        EXECUTE format('GRANT SELECT ON %s TO %I', rel_oid, analyst);
    END LOOP;
END
$grant$
