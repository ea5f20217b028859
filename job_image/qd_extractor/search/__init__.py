"""OpenSearch side of the pipeline: upstream's index bodies, documents, client and a bounded bulk writer."""

from qd_extractor.search.bulk import BulkWriter, ItemResult, SearchUnavailableError
from qd_extractor.search.client import SearchSettings, ensure_index, make_client
from qd_extractor.search.documents import GAZETTE_FIELDS, cap_text, gazette_document, url_for
from qd_extractor.search.mappings import excerpt_index_body, gazette_index_body

__all__ = [
    "GAZETTE_FIELDS",
    "BulkWriter",
    "ItemResult",
    "SearchSettings",
    "SearchUnavailableError",
    "cap_text",
    "ensure_index",
    "excerpt_index_body",
    "gazette_document",
    "gazette_index_body",
    "make_client",
    "url_for",
]
