-- Series of some metrics registered after series id :after (0: all of them), for the
-- query catalog (warehouse/query/catalog.py). Expanding bind :metrics.
-- Result: series_id, metric, labels_key (canonical JSON text), oldest first.
SELECT series_id, metric, labels_key FROM series
 WHERE metric IN :metrics AND series_id > :after
 ORDER BY series_id
