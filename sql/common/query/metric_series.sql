-- Series of some metrics, for the query catalog (warehouse/query/catalog.py).
-- Expanding bind :metrics. Result: series_id, metric, labels_key (canonical JSON text).
SELECT series_id, metric, labels_key FROM series
 WHERE metric IN :metrics
 ORDER BY series_id
