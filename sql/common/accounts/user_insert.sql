-- Add a user. Params: :name, :role, :password_hash (Argon2id), :now.
INSERT INTO users (name, role, password_hash, created_at, password_changed_at)
VALUES (:name, :role, :password_hash, :now, :now)
