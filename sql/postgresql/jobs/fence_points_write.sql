-- Ingest, inside the transaction that writes points: read the points_1m watermark and hold
-- it FOR SHARE until commit. The rollup refresh takes the row FOR UPDATE, so a write either
-- commits before the refresh reads points or sees the watermark the refresh left (and then
-- records its late points as invalidations). Result: the watermark (NULL: never refreshed).
SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1m' FOR SHARE
