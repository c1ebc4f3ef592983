-- Register one series (metric + canonical labels) unless it exists. Binds: :metric, :labels (JSON text), :labels_key (the same text: the identity).
INSERT INTO series (metric, labels, labels_key)
VALUES (:metric, CAST(:labels AS JSON), :labels_key)
ON CONFLICT (metric, labels_key) DO NOTHING
