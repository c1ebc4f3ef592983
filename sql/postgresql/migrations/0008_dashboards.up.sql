-- 0008 dashboards, PostgreSQL: dashboards as data (issue 13; docs/dashboards.md). A
-- dashboard row holds who owns it, who may see it and its current version; every saved
-- version of the document (JSON text, validated by warehouse.dashboards before it is
-- written) stays in dashboard_versions, so edits keep history and an old version can be
-- restored. JSON is stored as text on both engines so that both return the same thing
-- (cast with ::jsonb to query inside it).

CREATE TABLE dashboards (
    id              text        PRIMARY KEY,
    title           text        NOT NULL,
    owner           text,
    visibility      text        NOT NULL DEFAULT 'private'
                    CHECK (visibility IN ('private', 'shared', 'public')),
    shared_with     text        NOT NULL DEFAULT '[]',
    current_version integer     NOT NULL CHECK (current_version >= 1),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE dashboard_versions (
    id         text        NOT NULL REFERENCES dashboards (id) ON DELETE CASCADE,
    version    integer     NOT NULL CHECK (version >= 1),
    document   text        NOT NULL,
    author     text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (id, version)
);
