-- Analyst SQL: limits and the least-privilege role for the rest of this transaction only
-- (set_config(..., true) is SET LOCAL, which takes bind parameters; a rollback undoes it).
-- Parameters: :statement_timeout, :lock_timeout, :idle_timeout (e.g. '5000ms'), :role.
SELECT set_config('statement_timeout', :statement_timeout, true),
       set_config('lock_timeout', :lock_timeout, true),
       set_config('idle_in_transaction_session_timeout', :idle_timeout, true),
       set_config('role', :role, true)
