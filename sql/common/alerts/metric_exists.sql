-- Whether any series of :metric exists. Result: n.
SELECT count(*) AS n FROM series WHERE metric = :metric
