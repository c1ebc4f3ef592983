-- End a silence now (kept for the record). Params: :silence_id, :now.
UPDATE silences SET ends_at = :now WHERE silence_id = :silence_id AND ends_at > :now
