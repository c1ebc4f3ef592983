-- Register series (metric + canonical labels) that do not exist yet.
-- Expects a relation _stage_series(metric VARCHAR, labels_key VARCHAR); labels_key is the
-- canonical JSON of the labels and is stored both as JSON and as the identity text.
INSERT INTO series (metric, labels, labels_key)
SELECT metric, CAST(labels_key AS JSON), labels_key FROM _stage_series
ON CONFLICT (metric, labels_key) DO NOTHING
