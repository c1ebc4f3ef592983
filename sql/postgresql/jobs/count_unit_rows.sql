-- Rows of points in one archive unit: [:start, :end), all metrics (:metric '*') or one,
-- hot and compressed (segment counts, nothing decoded).
SELECT (SELECT count(*) FROM points
         WHERE ts >= :start AND ts < :end
           AND (:metric = '*' OR series_id IN (SELECT series_id FROM series
                                                WHERE metric = :metric)))
     + (SELECT coalesce(sum(n), 0) FROM points_compressed
         WHERE ts_min >= :start AND ts_min < :end
           AND (:metric = '*' OR series_id IN (SELECT series_id FROM series
                                                WHERE metric = :metric)))
