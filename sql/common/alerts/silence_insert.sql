-- Store a silence. Params: one per silences column.
INSERT INTO silences (silence_id, matchers, starts_at, ends_at, author, comment, created_at)
VALUES (:silence_id, :matchers, :starts_at, :ends_at, :author, :comment, :created_at)
