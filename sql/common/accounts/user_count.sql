-- How many users exist (none: the server may run in open mode on loopback). Result: n.
SELECT count(*) AS n FROM users
