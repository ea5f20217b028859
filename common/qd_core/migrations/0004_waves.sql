-- Every Indexed Job (wave) the operator created for a run. Wave numbers come from here, not from
-- qd_ranges (whose wave is cleared when a range is promoted or re-queued), so a number, and with it
-- a Job name, is never issued twice: a new wave can never be mistaken for an old, finished Job.
CREATE TABLE IF NOT EXISTS qd_waves (
    run_uid      TEXT        NOT NULL REFERENCES qd_runs (uid) ON DELETE CASCADE,
    stage        TEXT        NOT NULL CHECK (stage IN ('extract', 'excerpts')),
    tier         INTEGER     NOT NULL,
    number       INTEGER     NOT NULL,
    job_name     TEXT        NOT NULL,
    ranges       INTEGER     NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_uid, stage, tier, number),
    UNIQUE (run_uid, job_name)
);
-- Waves started before this migration.
INSERT INTO qd_waves (run_uid, stage, tier, number, job_name, ranges)
SELECT run_uid, stage, tier, wave, min(job_name), count(*) FROM qd_ranges
WHERE wave IS NOT NULL AND job_name IS NOT NULL GROUP BY run_uid, stage, tier, wave
ON CONFLICT DO NOTHING;
