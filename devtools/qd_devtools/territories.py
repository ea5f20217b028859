"""Real IBGE territory rows for tests: every Alagoas municipality, two associations, a few capitals.

The rows are copied from the scrapers' `territories.csv` (okfn-brasil/querido-diario) so that the
upstream slug lookup used by the segmenter (`slug(state_code + name)`) finds the same municipalities.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

#: The Alagoas association: the only pseudo-territory with an upstream segmenter.
AL_ASSOCIATION_ID = "2700000"
#: A real association id with no upstream segmenter (Espírito Santo).
ES_ASSOCIATION_ID = "3200000"


@dataclass(frozen=True)
class Territory:
    """One row of the upstream `territories` table (columns in upstream order)."""

    id: str
    name: str
    state_code: str
    state: str

    @property
    def is_association(self) -> bool:
        """Upstream treats `XX00000` ids as aggregated (association) gazettes."""
        return self.id[-5:] == "00000"


def read_territories() -> list[Territory]:
    """Parse the packaged CSV (UTF-8, header `id,name,state_code,state`)."""
    text = resources.files("qd_devtools").joinpath("data/territories.csv").read_text(encoding="utf-8")
    return [Territory(row["id"], row["name"], row["state_code"], row["state"])
            for row in csv.DictReader(io.StringIO(text))]


def territories_by_id() -> dict[str, Territory]:
    """Index the packaged rows by IBGE id."""
    return {t.id: t for t in read_territories()}


def load_territories(conn: Any) -> int:
    """Insert the rows (idempotent) and return how many of them are present in the table."""
    rows = read_territories()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO territories (id, name, state_code, state) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING",
            [(t.id, t.name, t.state_code, t.state) for t in rows],
        )
        cur.execute("SELECT count(*) FROM territories WHERE id = ANY(%s)", ([t.id for t in rows],))
        present = cur.fetchone()
    if not conn.autocommit:
        conn.commit()
    return int(present[0]) if present else 0
