-- wh.frame: µs start of the bucket whose key (frame_bucket_key) is {key}.
({key} * {every} + {origin})
