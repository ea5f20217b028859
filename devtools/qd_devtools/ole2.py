"""A minimal writer for OLE2 / Compound File Binary (version 3, 512-byte sectors).

Enough to hold the two streams of a Word 97 document. Every stream is padded to the 4096-byte
mini-stream cutoff, so no mini FAT or mini stream is needed, and the FAT fits in the header's
109 DIFAT slots (files up to about 7 MB).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

SECTOR = 512
MINI_CUTOFF = 4096
ENDOFCHAIN = 0xFFFFFFFE
FREESECT = 0xFFFFFFFF
FATSECT = 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF
SIGNATURE = bytes.fromhex("d0cf11e0a1b11ae1")
#: CLSID of a Word 97-2003 document, {00020906-0000-0000-C000-000000000046}, as stored on disk.
WORD_CLSID = bytes.fromhex("0609020000000000c000000000000046")
_ENTRY = "<64sHBBIII16sIQQIQ"


def _entry(name: str, kind: int, *, left: int = NOSTREAM, right: int = NOSTREAM, child: int = NOSTREAM,
           start: int = ENDOFCHAIN, size: int = 0, clsid: bytes = b"\0" * 16) -> bytes:
    raw = name.encode("utf-16-le") + b"\0\0" if name else b""
    return struct.pack(_ENTRY, raw.ljust(64, b"\0"), len(raw), kind, 1, left, right, child, clsid,
                       0, 0, 0, start, size)


def _sort_key(name: str) -> tuple[int, str]:
    """Directory order required by the format: shorter names first, then case-insensitive."""
    return (len(name), name.upper())


def _tree(ids: list[int], links: dict[int, tuple[int, int]]) -> int:
    """Build a balanced binary tree over `ids` (already sorted); return its root id."""
    if not ids:
        return NOSTREAM
    mid = len(ids) // 2
    links[ids[mid]] = (_tree(ids[:mid], links), _tree(ids[mid + 1:], links))
    return ids[mid]


def compound_file(streams: Sequence[tuple[str, bytes]], *, root_clsid: bytes = b"\0" * 16) -> bytes:
    """Return the bytes of a compound file whose root storage holds `streams` (name, data)."""
    padded = [(name, data.ljust(MINI_CUTOFF, b"\0")) for name, data in streams]
    data_sectors = [-(-len(data) // SECTOR) for _, data in padded]
    dir_sectors = -(-(len(padded) + 1) // (SECTOR // 128))
    fat_sectors = 1
    while fat_sectors * (SECTOR // 4) < sum(data_sectors) + dir_sectors + fat_sectors:
        fat_sectors += 1
    if fat_sectors > 109:
        raise ValueError("file too large for a header-only DIFAT")

    fat: list[int] = []
    starts: list[int] = []
    for count in [*data_sectors, dir_sectors]:
        starts.append(len(fat))
        fat.extend(range(len(fat) + 1, len(fat) + count))
        fat.append(ENDOFCHAIN)
    fat_start = len(fat)
    fat.extend([FATSECT] * fat_sectors)
    fat.extend([FREESECT] * (fat_sectors * (SECTOR // 4) - len(fat)))

    order = sorted(range(1, len(padded) + 1), key=lambda i: _sort_key(padded[i - 1][0]))
    links: dict[int, tuple[int, int]] = {}
    root_child = _tree(order, links)
    entries = [_entry("Root Entry", 5, child=root_child, clsid=root_clsid)]
    for i, (name, data) in enumerate(padded, start=1):
        left, right = links[i]
        entries.append(_entry(name, 2, left=left, right=right, start=starts[i - 1], size=len(data)))
    while len(entries) % (SECTOR // 128):
        entries.append(_entry("", 0, start=0))

    difat = [fat_start + i for i in range(fat_sectors)] + [FREESECT] * (109 - fat_sectors)
    header = struct.pack("<8s16sHHHHH6sIIIIIIIII", SIGNATURE, b"\0" * 16, 0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6,
                         0, fat_sectors, starts[-1], 0, MINI_CUTOFF, ENDOFCHAIN, 0, ENDOFCHAIN, 0)
    header += struct.pack("<109I", *difat)
    body = b"".join(data.ljust(n * SECTOR, b"\0") for (_, data), n in zip(padded, data_sectors, strict=True))
    return header + body + b"".join(entries) + struct.pack(f"<{len(fat)}I", *fat)
