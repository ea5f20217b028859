-- The upstream tables exactly as the scrapers' SQLAlchemy models create them
-- (okfn-brasil/querido-diario, gazette/database/models.py): consumers rely on these
-- columns and on the unique (territory_id, date, file_checksum). Our own state lives in
-- tables of our own (see common/qd_core/migrations/), never here. Idempotent.
CREATE TABLE IF NOT EXISTS territories (
    id          VARCHAR PRIMARY KEY,
    name        VARCHAR,
    state_code  VARCHAR,
    state       VARCHAR
);

CREATE TABLE IF NOT EXISTS gazettes (
    id                SERIAL PRIMARY KEY,
    source_text       TEXT,
    date              DATE,
    edition_number    VARCHAR,
    is_extra_edition  BOOLEAN,
    power             VARCHAR,
    file_checksum     VARCHAR,
    file_path         VARCHAR,
    file_url          VARCHAR,
    scraped_at        TIMESTAMP WITHOUT TIME ZONE,
    created_at        TIMESTAMP WITHOUT TIME ZONE,
    territory_id      VARCHAR REFERENCES territories (id),
    processed         BOOLEAN DEFAULT FALSE,
    UNIQUE (territory_id, date, file_checksum)
);
