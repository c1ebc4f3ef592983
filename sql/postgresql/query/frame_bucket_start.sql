-- wh.frame: µs start of the bucket {key} (frame_bucket_key), converted once per group.
wh_epoch_us({key})
