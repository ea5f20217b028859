-- Our own per-gazette, per-stage state. `gazettes` keeps only its upstream columns.
CREATE TABLE IF NOT EXISTS qd_gazette_state (
    gazette_id     INTEGER     NOT NULL REFERENCES gazettes (id) ON DELETE CASCADE,
    stage          TEXT        NOT NULL CHECK (stage IN ('extract', 'excerpts')),
    state          TEXT        NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed',
                                                        'skipped', 'quarantined')),
    attempts       INTEGER     NOT NULL DEFAULT 0,
    error_class    TEXT,
    terminal       BOOLEAN     NOT NULL DEFAULT FALSE,
    error_message  TEXT,
    run_id         TEXT,
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    source_bytes   BIGINT,
    text_bytes     BIGINT,
    documents      INTEGER,
    PRIMARY KEY (gazette_id, stage)
);
-- Selection excludes terminal failures; progress counts states per run.
CREATE INDEX IF NOT EXISTS qd_gazette_state_terminal ON qd_gazette_state (stage, gazette_id) WHERE terminal;
CREATE INDEX IF NOT EXISTS qd_gazette_state_run ON qd_gazette_state (run_id, stage, state);
