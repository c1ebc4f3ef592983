-- End every session of a user (password changed, user removed). Params: :user_name.
DELETE FROM web_sessions WHERE user_name = :user_name
