-- The operator's own state: one row per planned ExtractionRun, one row per id range and stage.
-- The plan is keyed by the CR's uid, so a restarted operator finds it and never re-plans; the
-- per-gazette truth stays in qd_gazette_state (whose run_id is this uid).
CREATE TABLE IF NOT EXISTS qd_runs (
    uid          TEXT        PRIMARY KEY,
    namespace    TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    -- The CR's spec.selection (camelCase, as written); the overlap check rebuilds the predicate from it.
    selection    JSONB       NOT NULL,
    stages       TEXT[]      NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    state        TEXT        NOT NULL DEFAULT 'active'
                 CHECK (state IN ('active', 'succeeded', 'degraded', 'failed', 'deleted'))
);
-- "Active" means not finished: the overlap check scans only these.
CREATE INDEX IF NOT EXISTS qd_runs_active ON qd_runs (created_at) WHERE finished_at IS NULL;

CREATE TABLE IF NOT EXISTS qd_ranges (
    run_uid      TEXT        NOT NULL REFERENCES qd_runs (uid) ON DELETE CASCADE,
    -- Stable ids: r0007, and the halves of a split r0007a, r0007b (then r0007aa, …).
    range_id     TEXT        NOT NULL,
    stage        TEXT        NOT NULL CHECK (stage IN ('extract', 'excerpts')),
    low          INTEGER     NOT NULL,
    high         INTEGER     NOT NULL,
    gazettes     INTEGER     NOT NULL,
    tier         INTEGER     NOT NULL DEFAULT 0,
    depth        INTEGER     NOT NULL DEFAULT 0,
    parent_id    TEXT,
    state        TEXT        NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'split', 'quarantined')),
    attempts     INTEGER     NOT NULL DEFAULT 0,
    -- The wave (Indexed Job) that runs the range, and its completion index in it.
    wave         INTEGER,
    job_name     TEXT,
    job_index    INTEGER,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    reason       TEXT,
    PRIMARY KEY (run_uid, range_id, stage),
    CHECK (low <= high)
);
-- Waves pick pending ranges per stage and tier; reactions look ranges up by Job.
CREATE INDEX IF NOT EXISTS qd_ranges_state ON qd_ranges (run_uid, stage, state, tier, low);
CREATE INDEX IF NOT EXISTS qd_ranges_job ON qd_ranges (run_uid, job_name, job_index) WHERE job_name IS NOT NULL;
