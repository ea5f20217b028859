"""What "pending" means — the one definition shared by the operator and the extractor.

Upstream (`tasks/list_gazettes_to_be_processed.py`) selects gazettes joined with their territory,
by `EXECUTION_MODE`, skips keys ending in `.zip`, and walks them newest first. We keep exactly
those predicates and add: filters by date span and territories, an id range (a Job's share), the
exclusion of gazettes whose failure for this stage was terminal (unless the run asks to retry
them), and keyset pagination instead of OFFSET (which skips rows while `processed` flips).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

from qd_core import config, states
from qd_core.states import Stage


class Mode(enum.StrEnum):
    """Upstream's EXECUTION_MODE values."""

    UNPROCESSED = "UNPROCESSED"  #: processed IS FALSE (NULL is not selected, as upstream)
    DAILY = "DAILY"  #: scraped in the last day (upstream's default)
    ALL = "ALL"  #: every gazette


def parse_mode(value: str, variable: str = "EXECUTION_MODE") -> Mode:
    """Parse a mode; the error keeps upstream's wording and names the variable."""
    try:
        return Mode(value.strip().upper())
    except ValueError:
        raise config.ConfigError(
            f'{variable}: Execution mode "{value}" is invalid (use UNPROCESSED, DAILY or ALL).') from None


#: The 15 columns upstream reads, in its order (the row dict keys of a gazette).
GAZETTE_COLUMNS: tuple[str, ...] = (
    "id", "source_text", "date", "edition_number", "is_extra_edition", "power", "file_checksum",
    "file_path", "file_url", "scraped_at", "created_at", "territory_id", "processed",
    "territory_name", "state_code",
)

# `source_text` is never read back: upstream overwrites it with the extracted text, and a legacy
# value could be large. Selecting NULL keeps the 15 keys and a page's memory small.
_SELECT = """SELECT g.id, NULL::text AS source_text, g.date, g.edition_number, g.is_extra_edition, g.power,
       g.file_checksum, g.file_path, g.file_url, g.scraped_at, g.created_at, g.territory_id,
       g.processed, t.name AS territory_name, t.state_code"""

_FROM = "FROM gazettes g INNER JOIN territories t ON t.id = g.territory_id"

_MODE_PREDICATES: Mapping[Mode, str] = {
    Mode.UNPROCESSED: "g.processed IS FALSE",
    Mode.DAILY: "g.scraped_at > current_timestamp - interval '1 day'",
    Mode.ALL: "TRUE",
}


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which gazettes a run (and each of its Jobs) works on."""

    mode: Mode = Mode.DAILY
    #: Inclusive bounds on the gazette's publication date.
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    #: IBGE territory ids; empty means all.
    territories: tuple[str, ...] = ()
    #: Also select gazettes whose last failure in this stage was terminal.
    retry_terminal: bool = False

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise config.ConfigError(f"date span is empty: from {self.date_from} is after to {self.date_to}")

    def predicate(self, stage: Stage = Stage.EXTRACT, *, scope_only: bool = False) -> tuple[str, dict[str, Any]]:
        """SQL condition over `g` (gazettes) and `t` (territories), and its parameters.

        `scope_only` drops what changes as work is done (the mode's `processed`/`scraped_at` test and
        the terminal-failure filter), leaving which gazettes the selection is about at all.
        """
        parts = ["g.file_path NOT LIKE '%%.zip'"]
        if not scope_only:
            parts.insert(0, _MODE_PREDICATES[self.mode])
        params: dict[str, Any] = {"stage": stage.value}
        if self.date_from:
            parts.append("g.date >= %(date_from)s")
            params["date_from"] = self.date_from
        if self.date_to:
            parts.append("g.date <= %(date_to)s")
            params["date_to"] = self.date_to
        if self.territories:
            parts.append("g.territory_id = ANY(%(territories)s)")
            params["territories"] = list(self.territories)
        if not self.retry_terminal and not scope_only:
            parts.append("NOT EXISTS (SELECT 1 FROM qd_gazette_state s WHERE s.gazette_id = g.id"
                         " AND s.stage = %(stage)s AND s.terminal)")
        return " AND ".join(f"({p})" for p in parts), params

    def count_sql(self, stage: Stage = Stage.EXTRACT) -> tuple[str, dict[str, Any]]:
        """How many gazettes are pending (for planning and progress)."""
        where, params = self.predicate(stage)
        return f"SELECT count(*) {_FROM} WHERE {where}", params

    def page_sql(self, *, low: int, high: int, before: int | None, limit: int,
                 stage: Stage = Stage.EXTRACT, run_id: str | None = None) -> tuple[str, dict[str, Any]]:
        """One keyset page of a Job's id range [low, high], newest first, strictly below `before`.

        With a `run_id`, gazettes this run already finished in this stage are skipped, so a retried
        index or a split half redoes nothing in ALL or DAILY mode (UNPROCESSED skips them anyway).
        """
        where, params = self.predicate(stage)
        if run_id is not None:
            where += (" AND NOT EXISTS (SELECT 1 FROM qd_gazette_state r WHERE r.gazette_id = g.id"
                      " AND r.stage = %(stage)s AND r.run_id = %(run_id)s AND r.state = 'succeeded')")
            params["run_id"] = run_id
        params.update(low=low, high=high, limit=limit)
        keyset = ""
        if before is not None:
            keyset = " AND g.id < %(before)s"
            params["before"] = before
        sql = (f"{_SELECT} {_FROM} WHERE {where} AND g.id BETWEEN %(low)s AND %(high)s{keyset}"
               " ORDER BY g.id DESC LIMIT %(limit)s")
        return sql, params


def from_env(env: Mapping[str, str] | None = None) -> Selection:
    """A selection from upstream's EXECUTION_MODE plus our QD_DATE_FROM/QD_DATE_TO/QD_TERRITORIES."""
    def date(name: str) -> dt.date | None:
        raw = config.env_opt(name, env=env)
        if raw is None:
            return None
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise config.ConfigError(f"{name}={raw!r} is not a date (YYYY-MM-DD)") from None

    territories = config.env_opt("QD_TERRITORIES", env=env) or ""
    return Selection(
        mode=parse_mode(config.env_str("EXECUTION_MODE", "DAILY", env=env)),
        date_from=date("QD_DATE_FROM"),
        date_to=date("QD_DATE_TO"),
        territories=tuple(t.strip() for t in territories.split(",") if t.strip()),
        retry_terminal=states.retry_terminal_from_env(env),
    )
