-- The OpenSearch documents each gazette produced (one for a gazette, one per segment for an
-- association gazette), so the excerpt stage, run later by another process, knows which ids
-- belong to a range without re-reading any text. Also whether the indexed text was truncated.
CREATE TABLE IF NOT EXISTS qd_gazette_documents (
    gazette_id    INTEGER NOT NULL REFERENCES gazettes (id) ON DELETE CASCADE,
    doc_id        TEXT    NOT NULL,
    territory_id  TEXT    NOT NULL,
    txt_key       TEXT    NOT NULL,
    text_bytes    BIGINT  NOT NULL,
    truncated     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (gazette_id, doc_id)
);
CREATE INDEX IF NOT EXISTS qd_gazette_documents_doc ON qd_gazette_documents (doc_id);
