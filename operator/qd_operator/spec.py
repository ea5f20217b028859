"""An ExtractionRun's spec as typed values, with errors that name the field path.

The apiserver already validates the CR against the CRD schema and its CEL rules; this module
validates again (a CRD installed without CEL support, an old object, a unit test) and applies
the same defaults, so the handlers never read raw dicts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from qd_core import config, selection
from qd_core.states import Stage
from qd_operator import quantity

#: The CRD's defaults (tests/unit/operator checks that crds/extractionrun.yaml says the same).
DEFAULT_STAGES = ("extract", "excerpts")
DEFAULT_GAZETTES_PER_RANGE = 500
DEFAULT_PARALLELISM = 2
DEFAULT_TIERS: Mapping[str, tuple[str, ...]] = {"extract": ("256Mi", "512Mi", "1Gi"), "excerpts": ("1Gi", "2Gi")}
DEFAULT_RETRIES = 2
DEFAULT_MAX_SPLIT_DEPTH = 4
DEFAULT_DEADLINE = 3600
DEFAULT_WORK_DIR_SIZE = "2Gi"
DEFAULT_CONFIG_MAP = "qd-services"
DEFAULT_SECRET = "qd-credentials"
DEFAULT_PULL_POLICY = "IfNotPresent"
#: Smallest tier: below this a Python interpreter with our imports cannot start.
MIN_TIER_BYTES = 64 * 2**20
MAX_TIERS = 6

_IBGE = re.compile(r"^[0-9]{7}$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class SpecError(ValueError):
    """The spec is invalid; `path` is the offending field (`spec.memoryTiers.extract[1]`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclasses.dataclass(frozen=True)
class Tier:
    """One memory size: the quantity as written (for the pod) and in bytes (for ordering)."""

    quantity: str
    bytes: int


@dataclasses.dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    pull_policy: str = DEFAULT_PULL_POLICY

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything a run asks for, typed and defaulted."""

    selection: selection.Selection
    stages: tuple[Stage, ...]
    gazettes_per_range: int
    target_bytes_per_range: int
    parallelism: int
    memory_tiers: Mapping[Stage, tuple[Tier, ...]]
    retries_per_range: int
    max_split_depth: int
    active_deadline_seconds: int
    suspend: bool
    ttl_seconds_after_finished: int | None
    image: Image
    rerank_image: Image | None
    cpu: str | None
    work_dir_size_limit: str
    config_map_name: str
    secret_name: str

    def tiers(self, stage: Stage) -> tuple[Tier, ...]:
        return self.memory_tiers[stage]

    def image_for(self, stage: Stage) -> Image:
        """Excerpts run in the rerank image (torch) when one is given."""
        if stage is Stage.EXCERPTS and self.rerank_image is not None:
            return self.rerank_image
        return self.image

    @property
    def wave_size(self) -> int:
        """At most this many ranges per wave, so retries and promotions form new small waves."""
        return self.parallelism * 8


def parse(spec: Mapping[str, Any], *, default_image: Image | None = None) -> RunSpec:
    """Validate and default `spec` (a CR's spec mapping); raise SpecError naming the field."""
    stages = _stages(spec.get("stages", list(DEFAULT_STAGES)))
    tiers_raw = _mapping(spec.get("memoryTiers", {}), "spec.memoryTiers")
    tiers = {stage: _tiers(tiers_raw.get(stage.value, list(DEFAULT_TIERS[stage.value])),
                           f"spec.memoryTiers.{stage.value}") for stage in Stage}
    ranges = _mapping(spec.get("ranges", {}), "spec.ranges")
    resources = _mapping(spec.get("resources", {}), "spec.resources")
    refs = _mapping(spec.get("serviceRefs", {}), "spec.serviceRefs")
    image = _image(spec["image"], "spec.image") if spec.get("image") is not None else default_image
    if image is None:
        raise SpecError("spec.image", "required (the operator has no default image)")
    ttl = spec.get("ttlSecondsAfterFinished")
    cpu = resources.get("cpu")
    if cpu is not None:
        _quantity(cpu, "spec.resources.cpu")
    work = spec.get("workDirSizeLimit", DEFAULT_WORK_DIR_SIZE)
    _quantity(work, "spec.workDirSizeLimit")
    return RunSpec(
        selection=parse_selection(spec.get("selection"), "spec.selection"),
        stages=stages,
        gazettes_per_range=_int(ranges.get("gazettesPerRange", DEFAULT_GAZETTES_PER_RANGE),
                                "spec.ranges.gazettesPerRange", 1, 100_000),
        target_bytes_per_range=_int(ranges.get("targetBytesPerRange", 0), "spec.ranges.targetBytesPerRange", 0),
        parallelism=_int(spec.get("parallelism", DEFAULT_PARALLELISM), "spec.parallelism", 1, 256),
        memory_tiers=tiers,
        retries_per_range=_int(spec.get("retriesPerRange", DEFAULT_RETRIES), "spec.retriesPerRange", 0, 10),
        max_split_depth=_int(spec.get("maxSplitDepth", DEFAULT_MAX_SPLIT_DEPTH), "spec.maxSplitDepth", 0, 16),
        active_deadline_seconds=_int(spec.get("activeDeadlineSeconds", DEFAULT_DEADLINE),
                                     "spec.activeDeadlineSeconds", 1, 7 * 86400),
        suspend=_bool(spec.get("suspend", False), "spec.suspend"),
        ttl_seconds_after_finished=None if ttl is None else _int(ttl, "spec.ttlSecondsAfterFinished", 0),
        image=image,
        rerank_image=_image(spec["rerankImage"], "spec.rerankImage") if spec.get("rerankImage") else None,
        cpu=None if cpu is None else str(cpu),
        work_dir_size_limit=str(work),
        config_map_name=_name(refs.get("configMapName", DEFAULT_CONFIG_MAP), "spec.serviceRefs.configMapName"),
        secret_name=_name(refs.get("secretName", DEFAULT_SECRET), "spec.serviceRefs.secretName"),
    )


def parse_selection(raw: Any, path: str = "spec.selection") -> selection.Selection:
    """`spec.selection` (also the JSON stored in qd_runs) as the shared Selection."""
    data = _mapping(raw, path)
    if "mode" not in data:
        raise SpecError(f"{path}.mode", "required (UNPROCESSED, DAILY or ALL)")
    try:
        mode = selection.parse_mode(str(data["mode"]), variable=f"{path}.mode")
    except config.ConfigError as err:
        raise SpecError(f"{path}.mode", str(err).split(": ", 1)[1]) from None
    date_from = _date(data.get("dateFrom"), f"{path}.dateFrom")
    date_to = _date(data.get("dateTo"), f"{path}.dateTo")
    if date_from and date_to and date_from > date_to:
        raise SpecError(f"{path}.dateTo", f"{date_to} is before dateFrom {date_from}")
    territories = data.get("territories") or []
    if not isinstance(territories, list):
        raise SpecError(f"{path}.territories", "must be a list of IBGE ids")
    for i, territory in enumerate(territories):
        if not isinstance(territory, str) or not _IBGE.match(territory):
            raise SpecError(f"{path}.territories[{i}]", f"{territory!r} is not an IBGE id (7 digits)")
    return selection.Selection(mode=mode, date_from=date_from, date_to=date_to,
                               territories=tuple(dict.fromkeys(territories)),
                               retry_terminal=_bool(data.get("retryTerminal", False), f"{path}.retryTerminal"))


def selection_to_json(sel: selection.Selection) -> dict[str, Any]:
    """The inverse of parse_selection (what qd_runs.selection stores)."""
    out: dict[str, Any] = {"mode": sel.mode.value, "retryTerminal": sel.retry_terminal}
    if sel.date_from:
        out["dateFrom"] = sel.date_from.isoformat()
    if sel.date_to:
        out["dateTo"] = sel.date_to.isoformat()
    if sel.territories:
        out["territories"] = list(sel.territories)
    return out


def _stages(raw: Any) -> tuple[Stage, ...]:
    if not isinstance(raw, list) or not raw:
        raise SpecError("spec.stages", "must be a non-empty list of extract, excerpts")
    stages: list[Stage] = []
    for i, value in enumerate(raw):
        try:
            stage = Stage(value)
        except ValueError:
            raise SpecError(f"spec.stages[{i}]", f"{value!r} is not a stage (extract, excerpts)") from None
        if stage in stages:
            raise SpecError(f"spec.stages[{i}]", f"{value!r} is listed twice")
        stages.append(stage)
    if Stage.EXCERPTS in stages and Stage.EXTRACT not in stages:
        raise SpecError("spec.stages", "'excerpts' requires 'extract'")
    return tuple(s for s in Stage if s in stages)  # pipeline order, whatever the list order


def _tiers(raw: Any, path: str) -> tuple[Tier, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TIERS:
        raise SpecError(path, f"must list 1 to {MAX_TIERS} memory sizes")
    tiers: list[Tier] = []
    for i, value in enumerate(raw):
        size = _quantity(value, f"{path}[{i}]")
        if size < MIN_TIER_BYTES:
            raise SpecError(f"{path}[{i}]", f"{value} is below the minimum 64Mi")
        if tiers and size <= tiers[-1].bytes:
            raise SpecError(f"{path}[{i}]", f"{value} is not larger than the previous tier {tiers[-1].quantity}"
                            " (tiers must be strictly increasing)")
        tiers.append(Tier(str(value), size))
    return tuple(tiers)


def _quantity(value: Any, path: str) -> int:
    try:
        return quantity.to_bytes(value) if isinstance(value, str) else quantity.to_bytes(str(value))
    except quantity.QuantityError as err:
        raise SpecError(path, str(err)) from None


def _image(raw: Any, path: str) -> Image:
    data = _mapping(raw, path)
    repository = data.get("repository")
    if not isinstance(repository, str) or not repository or len(repository) > 255:
        raise SpecError(f"{path}.repository", "required (e.g. localhost/qd-extractor)")
    tag = str(data.get("tag", "latest"))
    if not _TAG.match(tag):
        raise SpecError(f"{path}.tag", f"{tag!r} is not an image tag")
    policy = data.get("pullPolicy", DEFAULT_PULL_POLICY)
    if policy not in ("Always", "IfNotPresent", "Never"):
        raise SpecError(f"{path}.pullPolicy", f"{policy!r} is not Always, IfNotPresent or Never")
    return Image(repository, tag, str(policy))


def _mapping(raw: Any, path: str) -> Mapping[str, Any]:
    if raw is None:
        raise SpecError(path, "required")
    if not isinstance(raw, Mapping):
        raise SpecError(path, "must be an object")
    return raw


def _int(raw: Any, path: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise SpecError(path, f"{raw!r} is not an integer")
    if raw < minimum or (maximum is not None and raw > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise SpecError(path, f"{raw} must be {bound}")
    return raw


def _bool(raw: Any, path: str) -> bool:
    if not isinstance(raw, bool):
        raise SpecError(path, f"{raw!r} is not true or false")
    return raw


def _date(raw: Any, path: str) -> dt.date | None:
    if raw is None:
        return None
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise SpecError(path, f"{raw!r} is not a date (YYYY-MM-DD)") from None


def _name(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or len(raw) > 253 or not _DNS_SUBDOMAIN.match(raw):
        raise SpecError(path, f"{raw!r} is not a Kubernetes object name")
    return raw
