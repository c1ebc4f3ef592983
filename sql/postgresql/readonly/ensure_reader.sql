-- Create, once and idempotently, this database's read-only role for analyst SQL and the
-- SECURITY DEFINER function analyst SQL runs in; grant the role SELECT on the analyst
-- relations that exist. Safe to run from several processes at once (one at a time per
-- database under an advisory lock; a role another process just created is taken as is).
-- Reads the settings wh.readonly_role (the role) and wh.readonly_relations (comma-separated
-- relation names), set just before with readonly/setting. Needs CREATEROLE (or superuser)
-- the first time, and ownership of the relations.
DO $setup$
DECLARE
    reader text := current_setting('wh.readonly_role');
    rel text;
    rel_oid regclass;
    rel_schema text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('wh_readonly_setup'));
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = reader) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                           'NOINHERIT NOREPLICATION NOBYPASSRLS', reader);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- made by another process meanwhile: the same role, keep it
        END;
    END IF;
    -- A role somebody made powerful (or a member of pg_read_server_files, pg_signal_backend,
    -- ...) is not a read-only role: refuse rather than run analyst SQL with it.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = reader
                  AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls))
       OR EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
                   WHERE r.rolname = reader) THEN
        RAISE EXCEPTION 'role % has attributes or memberships a read-only role must not have',
            reader;
    END IF;
    -- The login role must be allowed to SET ROLE to the reader.
    IF NOT pg_has_role(current_user, reader, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', reader, current_user);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'wh_readonly') THEN
        EXECUTE format('CREATE SCHEMA wh_readonly AUTHORIZATION %I', reader);
    END IF;
    -- Inside a SECURITY DEFINER function PostgreSQL refuses SET ROLE / set_config('role')
    -- ("cannot set parameter role within security-definer function"): without it a query
    -- could switch back to the login role (a superuser URL) in mid-statement.
    CREATE OR REPLACE FUNCTION wh_readonly.run_query(query text) RETURNS SETOF record
        LANGUAGE plpgsql SECURITY DEFINER
        AS $body$ BEGIN RETURN QUERY EXECUTE query; END $body$;
    EXECUTE format('ALTER FUNCTION wh_readonly.run_query(text) OWNER TO %I', reader);
    REVOKE ALL ON FUNCTION wh_readonly.run_query(text) FROM PUBLIC;
    FOREACH rel IN ARRAY string_to_array(current_setting('wh.readonly_relations'), ',') LOOP
        rel_oid := to_regclass(rel);
        CONTINUE WHEN rel_oid IS NULL;  -- not migrated yet: granted by a later setup
        SELECT n.nspname INTO rel_schema
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel_oid;
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', rel_schema, reader);
        EXECUTE format('GRANT SELECT ON %s TO %I', rel_oid, reader);
    END LOOP;
END
$setup$
