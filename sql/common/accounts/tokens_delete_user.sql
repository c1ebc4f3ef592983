-- Delete every token of a user that is being removed. Params: :user_name.
DELETE FROM api_tokens WHERE user_name = :user_name
