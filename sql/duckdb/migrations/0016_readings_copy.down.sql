-- 0016 down: the pivoted copy goes; frames read points again.
DROP TABLE IF EXISTS reading_chunks;
DROP TABLE IF EXISTS reading_columns;
DROP TABLE IF EXISTS reading_entities;
DROP TABLE IF EXISTS readings;
DROP SEQUENCE IF EXISTS reading_copy_seq;
