-- Forget alert instances (gone inactive, expired, or about to be rewritten).
-- Params: :fingerprints (a list). One statement for any number: arrays, not executemany.
DELETE FROM alert_instances
WHERE fingerprint IN (SELECT unnest(CAST(:fingerprints AS VARCHAR[])))
