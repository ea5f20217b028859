-- Pods each wave's Job was created with (the run's free slots at that moment): the reconciler counts
-- them for Jobs its watch has not delivered yet, and rebuilds a missing Job with the same number.
ALTER TABLE qd_waves ADD COLUMN IF NOT EXISTS parallelism INTEGER;
UPDATE qd_waves SET parallelism = ranges WHERE parallelism IS NULL;
ALTER TABLE qd_waves ALTER COLUMN parallelism SET NOT NULL;
