"""A minimal Word 97 (.doc, MS-DOC) writer in pure Python, so the DOC fixture needs no LibreOffice.

The file holds what Apache POI's HWPF (used by Tika) needs to read the text: a FIB, the text as one
8-bit (cp1252) piece, a piece table (CLX), one CHPX formatted disk page, PAPX pages (one run per
paragraph), a section table, a one-entry style sheet, a font table and an empty DOP, all inside an
OLE2 compound file.
"""

from __future__ import annotations

import struct

from qd_devtools.ole2 import WORD_CLSID, compound_file

_TEXT_FC = 0x800  # byte offset of the text in the WordDocument stream
_FC_COMPRESSED = 0x40000000  # piece descriptor flag: 8-bit text at fc/2
_PAGE = 512
# Indexes of fc/lcb pairs in FibRgFcLcb97 (MS-DOC 2.5.6).
_STSHF, _PLCFSED, _PLCFBTECHPX, _PLCFBTEPAPX, _STTBFFFN, _DOP, _CLX = 1, 6, 12, 13, 15, 31, 33
_FC_LCB_PAIRS = 0x5D
_DOP_SIZE = 544
_PARAS_PER_FKP = 28  # 4*(n+1) + 13*n bytes must stay below the PapxInFkp at offset 500


def _fib(ccp_text: int, cb_mac: int, fc_lcb: dict[int, tuple[int, int]]) -> bytes:
    """FibBase + FibRgW97 + FibRgLw97 + FibRgFcLcb97 (nFib 0x00C1, text in the 1Table stream)."""
    flags = (1 << 9) | (1 << 12)  # fWhichTblStm (1Table), fExtChar
    base = struct.pack("<HHHHHHHIBBHHII", 0xA5EC, 0x00C1, 0, 0x0416, 0, flags, 0x00BF, 0, 0, 0, 0, 0, 0, 0)
    rg_w = struct.pack("<H", 14) + b"\0" * 28
    lw = [0] * 22
    lw[0], lw[3] = cb_mac, ccp_text
    rg_lw = struct.pack("<H22I", 22, *lw)
    pairs = [0] * (2 * _FC_LCB_PAIRS)
    for index, (fc, lcb) in fc_lcb.items():
        pairs[2 * index], pairs[2 * index + 1] = fc, lcb
    rg_fc_lcb = struct.pack(f"<H{2 * _FC_LCB_PAIRS}I", _FC_LCB_PAIRS, *pairs)
    return base + rg_w + rg_lw + rg_fc_lcb + struct.pack("<H", 0)  # cswNew = 0


def _chpx_fkp(fc_start: int, fc_end: int) -> bytes:
    """One run covering the whole text with default character properties (rgb offset 0)."""
    page = bytearray(_PAGE)
    struct.pack_into("<IIB", page, 0, fc_start, fc_end, 0)
    page[511] = 1
    return bytes(page)


def _papx_fkp(bounds: list[int]) -> bytes:
    """PAPX page with one run per paragraph; `bounds` holds each start fc plus the final end.

    HWPF expects a PAPX to end at each paragraph mark. All runs share one PapxInFkp setting istd 0.
    """
    page = bytearray(_PAGE)
    count = len(bounds) - 1
    struct.pack_into(f"<{count + 1}I", page, 0, *bounds)
    for i in range(count):
        page[4 * (count + 1) + 13 * i] = 500 // 2  # BX: bOffset, then a zero PHE
    page[500:504] = b"\x00\x01\x00\x00"  # cb=0, cb'=1 -> grpprlInPapx of 2 bytes: istd=0
    page[511] = count
    return bytes(page)


def _font_table(name: str) -> bytes:
    """SttbfFfn with one FFN (TrueType, variable pitch, Swiss family)."""
    xsz = name.encode("utf-16-le") + b"\0\0"
    size = 40 + len(xsz)
    ffn = struct.pack("<BBhBB10s24s", size - 1, 0x26, 400, 0, 0, b"\0" * 10, b"\0" * 24) + xsz
    return struct.pack("<HH", 1, 0) + ffn


def _stylesheet() -> bytes:
    """STSH with an 18-byte Stshi declaring one (empty) style slot, so istd 0 resolves."""
    stshi = struct.pack("<HHHHHH3H", 1, 10, 1, 0x5B, 15, 0, 0, 0, 0)
    return struct.pack("<H", len(stshi)) + stshi + struct.pack("<H", 0)


def word97_document(paragraphs: list[str]) -> bytes:
    """Return a .doc file whose body is `paragraphs` (cp1252-encodable text, one per paragraph)."""
    encoded = [(p.replace("\r", " ").replace("\n", " ") + "\r").encode("cp1252", errors="replace")
               for p in paragraphs or [""]]
    ccp = sum(len(p) for p in encoded)
    fc_end = _TEXT_FC + ccp
    starts = [_TEXT_FC]
    for p in encoded:
        starts.append(starts[-1] + len(p))
    groups = [starts[i:i + _PARAS_PER_FKP + 1] for i in range(0, len(encoded), _PARAS_PER_FKP)]
    pn_chp = -(-fc_end // _PAGE)
    cb_mac = (pn_chp + 1 + len(groups)) * _PAGE

    table = bytearray()
    offsets: dict[int, tuple[int, int]] = {}

    def put(index: int, blob: bytes) -> None:
        offsets[index] = (len(table), len(blob))
        table.extend(blob)

    put(_STSHF, _stylesheet())
    put(_CLX, b"\x02" + struct.pack("<IIIHIH", 16, 0, ccp, 0, (_TEXT_FC * 2) | _FC_COMPRESSED, 0))
    put(_PLCFBTECHPX, struct.pack("<III", _TEXT_FC, fc_end, pn_chp))
    pap_fcs = [g[0] for g in groups] + [fc_end]
    pap_pns = [pn_chp + 1 + i for i in range(len(groups))]
    put(_PLCFBTEPAPX, struct.pack(f"<{len(pap_fcs)}I{len(pap_pns)}I", *pap_fcs, *pap_pns))
    put(_PLCFSED, struct.pack("<IIHIHI", 0, ccp, 0, 0xFFFFFFFF, 0, 0))
    put(_STTBFFFN, _font_table("Arial"))
    put(_DOP, b"\0" * _DOP_SIZE)

    main = bytearray(_fib(ccp, cb_mac, offsets).ljust(_TEXT_FC, b"\0"))
    main.extend(b"".join(encoded))
    main.extend(b"\0" * (pn_chp * _PAGE - len(main)))
    main.extend(_chpx_fkp(_TEXT_FC, fc_end))
    for group in groups:
        main.extend(_papx_fkp(group))
    return compound_file([("WordDocument", bytes(main)), ("1Table", bytes(table))], root_clsid=WORD_CLSID)
