-- A wide write extended the copy of the chunk range starting at :start: give it a new
-- copy_no, so a frame planned from the list before the write (its entities and columns may
-- lack the write's) fails its guard and reads points instead of half of the write
-- (warehouse/query/frame_readings.py CopyRead.held).
UPDATE reading_chunks SET copy_no = nextval('reading_copy_seq') WHERE chunk_start = :start
