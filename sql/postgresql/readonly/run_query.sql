-- Run the analyst's (already checked and wrapped) query inside wh_readonly.run_query, a
-- SECURITY DEFINER function owned by the read-only role: there PostgreSQL refuses to change
-- role or session_authorization, so the query cannot SET ROLE back to the login role.
-- The columns placeholder is the column definition list built from the statement's
-- description. Parameters: :query. Result: the query's rows.
SELECT * FROM wh_readonly.run_query(:query) AS wh_result({columns})
