-- A wide write: number the label sets of the batch (_stage_label_sets: set_no, labels_key)
-- that the pivoted copy has not met yet, as jobs/readings_register.sql does for a chunk.
INSERT INTO reading_entities (labels_key, entity)
SELECT labels_key,
       (SELECT coalesce(max(entity), 0) FROM reading_entities)
       + CAST(row_number() OVER (ORDER BY labels_key) AS INTEGER)
  FROM (SELECT DISTINCT labels_key FROM _stage_label_sets
         WHERE labels_key NOT IN (SELECT labels_key FROM reading_entities))
