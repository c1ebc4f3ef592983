-- The analyst's statement as a subquery: only a query (SELECT, VALUES, TABLE, WITH ... SELECT)
-- parses there, so the statement kind is checked by PostgreSQL's own parser; a data-modifying
-- WITH is refused in a subquery too. Placeholders: the statement (its binds already rendered
-- by psycopg), the select list (all columns, or numbered ones with pseudo-types as text), the
-- column aliases (none, or the numbers) and the row cap + 1. The line breaks keep a trailing
-- comment inside the parentheses.
SELECT {select_list} FROM (
{query}
) AS wh_analyst_query{column_aliases} LIMIT {limit}
