-- Rows of points in one archive unit: [:start, :end), all metrics (:metric '*') or one.
SELECT count(*) FROM points
 WHERE ts >= :start AND ts < :end
   AND (:metric = '*' OR series_id IN (SELECT series_id FROM series WHERE metric = :metric))
