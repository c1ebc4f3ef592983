"""Query API: points (raw or bucketed), runs, steps and read-only SQL, as DataFrames."""
