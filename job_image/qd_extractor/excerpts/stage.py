"""The excerpts stage over one gazette id range: claim, extract, rerank, tag, record.

Work unit: the gazettes of [low, high] whose extraction succeeded and whose excerpts are not done
(a success older than the latest extraction does not count; terminal failures are skipped unless
retried), a page at a time, newest first. Their OpenSearch document ids come from
`qd_gazette_documents`, written by the extract stage, so no text is ever read back. For each theme
and each batch of document ids: every query (extraction.py), one refresh, then rerank and entity
tagging of exactly the excerpts just written. A gazette succeeds when all its documents went through
every theme; a failing search is bisected down to the document that causes it, so one bad gazette
never fails its batch-mates, and a service outage stops the range with in-flight gazettes released.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence

import psycopg2.extensions
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, TransportError

from qd_core import db, statestore
from qd_core.config import ConfigError
from qd_core.states import ErrorClass, Stage
from qd_extractor import logs
from qd_extractor.excerpts import entities, fetch, rerank
from qd_extractor.excerpts.analyze import TermAnalyzer
from qd_extractor.excerpts.extraction import ThemedExtractor
from qd_extractor.excerpts.queries import doc_of_excerpt
from qd_extractor.excerpts.themes import Theme
from qd_extractor.excerpts.writes import TrackedWriter
from qd_extractor.search.bulk import BulkWriter, SearchUnavailableError
from qd_extractor.search.client import ensure_index
from qd_extractor.search.mappings import excerpt_index_body
from qd_extractor.summary import RangeSummary

# A run's excerpts cover the gazettes this run extracted (upstream: themes apply to the documents
# indexed in the same run); without a run id (manual use) every extracted gazette in the range.
_PENDING = """
SELECT e.gazette_id FROM qd_gazette_state e
WHERE e.stage = 'extract' AND e.state = 'succeeded' AND e.gazette_id BETWEEN %(low)s AND %(high)s{keyset}
  AND (%(run)s = 'manual' OR e.run_id = %(run)s)
  AND NOT EXISTS (SELECT 1 FROM qd_gazette_state x WHERE x.gazette_id = e.gazette_id AND x.stage = 'excerpts'
    AND x.finished_at >= e.finished_at AND (x.state IN ('succeeded', 'skipped') OR (x.terminal AND NOT %(retry)s)))
ORDER BY e.gazette_id DESC LIMIT %(limit)s
"""
_DOCUMENTS = ("SELECT gazette_id, doc_id FROM qd_gazette_documents WHERE gazette_id = ANY(%s)"
              " ORDER BY gazette_id DESC, doc_id")
#: Document id -> (error class, message) of the first failure of one of its steps.
Failures = dict[str, tuple[ErrorClass, str]]


@dataclasses.dataclass(frozen=True)
class StageOptions:
    gazette_index: str  #: OPENSEARCH_INDEX, searched by the themed queries
    run_id: str = "manual"
    gazette_page: int = 250  #: gazettes claimed per round
    search_batch: int = 250  #: gazette document ids per themed search (upstream: 250)
    search_page: int = 50  #: hits per query per themed `_msearch` round (upstream scrolled 5 at a time)
    id_batch: int = 250  #: excerpt ids per rerank fetch / entity search
    max_attempts: int = 5
    retry_terminal: bool = False


@dataclasses.dataclass
class ExcerptSummary(RangeSummary):
    """What an excerpts range run did (logged as `range_summary`)."""

    skipped: int = 0  #: extracted gazettes with no indexed document
    excerpts: int = 0
    scored: int = 0
    tagged: int = 0


class ExcerptStage:
    def __init__(self, conn: psycopg2.extensions.connection, client: OpenSearch, writer: BulkWriter,
                 themes: Sequence[Theme], scorer: rerank.Scorer, options: StageOptions,
                 logger: logging.Logger) -> None:
        self.conn = conn
        self.client = client
        self.writer = TrackedWriter(writer, client)
        self.themes = tuple(themes)
        self.scorer = scorer
        self.options = options
        self.log = logger
        self.analyzer = TermAnalyzer(client, options.gazette_index)
        self.extractor = ThemedExtractor(client, options.gazette_index, self.analyzer, self.writer,
                                         page_size=options.search_page)
        self._claimed: dict[int, int] = {}  # gazette id -> attempt, while in flight
        self._ready = False

    def run(self, low: int, high: int) -> ExcerptSummary:
        summary = ExcerptSummary(low, high)
        try:
            for gids in self._pages(low, high):
                self._page(gids, summary)
        except BaseException:
            for gid in list(self._claimed):
                try:
                    statestore.release(self.conn, gid, Stage.EXCERPTS)
                except Exception:  # the database may be what failed: report the original error
                    self.log.exception("could not release gazette %s", gid)
            self._claimed.clear()
            raise
        finally:
            logs.event(self.log, logs.RANGE_SUMMARY, "excerpts range finished", stage=Stage.EXCERPTS.value,
                       **summary.log_fields(), analyze_calls=self.analyzer.calls,
                       themed_searches=self.extractor.searches, themed_requests=self.extractor.requests)
        return summary

    def _pages(self, low: int, high: int) -> Iterator[list[int]]:
        before: int | None = None
        while True:
            params = {"low": low, "high": high, "retry": self.options.retry_terminal, "run": self.options.run_id,
                      "limit": self.options.gazette_page, "before": before}
            keyset = "" if before is None else " AND e.gazette_id < %(before)s"
            rows = db.fetch_all(self.conn, _PENDING.format(keyset=keyset), params)
            if not rows:
                return
            yield [int(r[0]) for r in rows]
            before = int(rows[-1][0])

    def _prepare(self) -> None:
        """Once per run, before the first claim: gazette index made searchable, theme indexes, terms analysed."""
        if self._ready:
            return
        try:
            fetch.call(self.client.indices.refresh, index=self.options.gazette_index)
        except NotFoundError:
            raise ConfigError(f"OPENSEARCH_INDEX={self.options.gazette_index}: the gazette index does not exist"
                              ) from None
        for theme in self.themes:
            ensure_index(self.client, theme.index, excerpt_index_body())
        # Every distinct term of every theme in one `_analyze` request, instead of one per term.
        self.analyzer.prefetch(t for theme in self.themes for q in theme.queries for t in q.terms())
        self._ready = True

    def _page(self, gids: list[int], summary: ExcerptSummary) -> None:
        self._prepare()
        for gid in gids:
            self._claimed[gid] = statestore.claim(self.conn, gid, Stage.EXCERPTS, self.options.run_id)
            summary.seen += 1
        docs: dict[int, list[str]] = {gid: [] for gid in gids}
        for gid, doc_id in db.fetch_all(self.conn, _DOCUMENTS, (gids,)):
            docs[int(gid)].append(str(doc_id))
        doc_ids = list(dict.fromkeys(d for gid in gids for d in docs[gid]))  # a shared file is searched once
        summary.documents += len(doc_ids)
        failures: Failures = {}
        for theme in self.themes:
            live = [d for d in doc_ids if d not in failures]
            for batch in fetch.batched(live, self.options.search_batch):
                self._batch(theme, list(batch), failures, summary)
        for gid in gids:
            if docs[gid]:
                self._settle(gid, [failures[d] for d in docs[gid] if d in failures], summary)
            else:
                self._skip(gid, summary)

    def _batch(self, theme: Theme, batch: list[str], failures: Failures,
               summary: ExcerptSummary) -> None:
        excerpt_ids = self._extract_isolating(theme, batch, failures)
        self.writer.flush(refresh=True)
        self._note_write_failures(failures)
        excerpt_ids = [e for e in excerpt_ids if doc_of_excerpt(e) not in failures]
        summary.excerpts += len(excerpt_ids)
        if not excerpt_ids:
            return
        opts = self.options
        steps: list[tuple[str, Callable[[], int]]] = [
            ("rerank", lambda: rerank.rerank_excerpts(self.client, self.writer, self.scorer, theme, excerpt_ids,
                                                      id_batch=opts.id_batch)),
            ("entities", lambda: entities.tag_entities(self.client, self.writer, theme, excerpt_ids,
                                                       id_batch=opts.id_batch)),
        ]
        for name, step in steps:
            try:
                done = step()
            except (SearchUnavailableError, ConfigError):  # an outage, or a model that cannot load: stop
                raise
            except Exception as err:
                message = f"{name} ({theme.index}): {type(err).__name__}: {err}"
                self.log.warning("excerpt step failed", exc_info=True,
                                 extra={"event_type": "excerpt_step_error", "step": name, "index_name": theme.index})
                for doc_id in {doc_of_excerpt(e) for e in excerpt_ids}:
                    failures.setdefault(doc_id, (_classify(err), message))
                break
            if name == "rerank":
                summary.scored += done
            else:
                summary.tagged += done
        self.writer.flush()
        self._note_write_failures(failures)

    def _extract_isolating(self, theme: Theme, ids: list[str], failures: Failures) -> list[str]:
        """Extract a batch; on a non-outage error, split it in halves until the culprit is alone."""
        try:
            return self.extractor.extract(theme, ids)
        except SearchUnavailableError:
            raise
        except Exception as err:
            if len(ids) == 1:
                failures.setdefault(ids[0], (_classify(err), f"themed search ({theme.index}): "
                                                             f"{type(err).__name__}: {str(err)[:500]}"))
                return []
            logs.event(self.log, "excerpt_batch_split", "themed search failed; isolating the document",
                       level=logging.WARNING, index_name=theme.index, batch=len(ids), error_type=type(err).__name__)
            half = len(ids) // 2
            return (self._extract_isolating(theme, ids[:half], failures)
                    + self._extract_isolating(theme, ids[half:], failures))

    def _note_write_failures(self, failures: Failures) -> None:
        for excerpt, result in self.writer.take_failed().items():
            refused = 400 <= result.status < 500 and result.status != 429
            failures.setdefault(doc_of_excerpt(excerpt), (
                ErrorClass.REJECTED if refused else ErrorClass.SEARCH,
                f"excerpt {excerpt} refused: HTTP {result.status} {result.error}"))

    def _skip(self, gid: int, summary: ExcerptSummary) -> None:
        """An extraction that indexed nothing (an association text without segments) has no excerpts."""
        reason = "no indexed document: the extraction produced none"
        statestore.skip(self.conn, gid, Stage.EXCERPTS, reason)
        del self._claimed[gid]
        summary.skipped += 1
        logs.event(self.log, logs.GAZETTE_OUTCOME, "gazette has nothing to excerpt", gazette_id=gid,
                   stage=Stage.EXCERPTS.value, state="skipped", reason=reason)

    def _settle(self, gid: int, problems: list[tuple[ErrorClass, str]], summary: ExcerptSummary) -> None:
        attempt = self._claimed[gid]
        if not problems:
            statestore.succeed(self.conn, {"id": gid}, Stage.EXCERPTS, mark_processed=False)
            summary.succeeded += 1
            del self._claimed[gid]
            logs.event(self.log, logs.GAZETTE_OUTCOME, "gazette excerpts done", gazette_id=gid,
                       stage=Stage.EXCERPTS.value, state="succeeded")
            return
        error, message = problems[0]
        terminal = statestore.fail(self.conn, gid, Stage.EXCERPTS, error, message, attempts=attempt,
                                   max_attempts=self.options.max_attempts)
        del self._claimed[gid]
        summary.record_failure(error, terminal)
        logs.event(self.log, logs.GAZETTE_OUTCOME, "Could not extract excerpts", level=logging.WARNING,
                   gazette_id=gid, stage=Stage.EXCERPTS.value, state="failed", error_class=error.value,
                   terminal=terminal, error=message)


def _classify(err: BaseException) -> ErrorClass:
    return ErrorClass.SEARCH if isinstance(err, TransportError) else ErrorClass.INTERNAL
