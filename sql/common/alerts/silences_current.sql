-- Silences that have not ended at :now (active now or starting later).
-- Result: silence_id, matchers, starts_at, ends_at, author, comment, created_at.
SELECT silence_id, matchers, starts_at, ends_at, author, comment, created_at
FROM silences WHERE ends_at > :now ORDER BY starts_at, silence_id
