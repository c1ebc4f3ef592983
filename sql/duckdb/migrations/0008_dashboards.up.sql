-- 0008 dashboards, DuckDB: dashboards as data (issue 13; docs/dashboards.md). A dashboard
-- row holds who owns it, who may see it and its current version; every saved version of
-- the document (JSON text, validated by warehouse.dashboards before it is written) stays in
-- dashboard_versions, so edits keep history and an old version can be restored.
-- JSON is stored as text on both engines so that both return the same thing.
-- No foreign key: deleting a dashboard deletes its versions in the same transaction.

CREATE TABLE dashboards (
    id              VARCHAR     PRIMARY KEY,
    title           VARCHAR     NOT NULL,
    owner           VARCHAR,
    visibility      VARCHAR     NOT NULL DEFAULT 'private'
                    CHECK (visibility IN ('private', 'shared', 'public')),
    shared_with     VARCHAR     NOT NULL DEFAULT '[]',
    current_version INTEGER     NOT NULL CHECK (current_version >= 1),
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE dashboard_versions (
    id         VARCHAR     NOT NULL,
    version    INTEGER     NOT NULL CHECK (version >= 1),
    document   VARCHAR     NOT NULL,
    author     VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (id, version)
);
