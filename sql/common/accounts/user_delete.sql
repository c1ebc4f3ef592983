-- Remove a user (its tokens and sessions are deleted first, in the same transaction).
-- Params: :name.
DELETE FROM users WHERE name = :name
