-- Forget one alert instance (it went back to inactive). Params: :fingerprint.
DELETE FROM alert_instances WHERE fingerprint = :fingerprint
