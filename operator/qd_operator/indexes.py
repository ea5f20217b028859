"""Job completion-index strings (`"1,3-5,7"`, as in Job.status.completedIndexes) both ways."""

from __future__ import annotations

from collections.abc import Iterable


def parse(text: str | None) -> list[int]:
    """`"1,3-5"` → [1, 3, 4, 5]; None or "" → []."""
    out: list[int] = []
    for raw in (text or "").split(","):
        part = raw.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        out.extend(range(int(low), int(high or low) + 1))
    return out


def compress(indexes: Iterable[int]) -> str:
    """[1, 3, 4, 5] → `"1,3-5"` (the Job controller's compressed form)."""
    parts: list[str] = []
    ordered = sorted(set(indexes))
    start = prev = None
    for i in [*ordered, None]:
        if i is not None and prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    return ",".join(parts)
