"""Kubernetes resource quantities (`512Mi`, `1G`, `500m`, `1e3`) to exact numbers.

The CRD validates tiers with CEL's `quantity()`; the operator parses them again, with the same
grammar, because it orders tiers, compares them and reports them in bytes.
"""

from __future__ import annotations

import decimal
import math
import re

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"m": decimal.Decimal("0.001"), "": decimal.Decimal(1), "k": decimal.Decimal(10**3),
            "M": decimal.Decimal(10**6), "G": decimal.Decimal(10**9), "T": decimal.Decimal(10**12),
            "P": decimal.Decimal(10**15), "E": decimal.Decimal(10**18)}
_QUANTITY = re.compile(r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
                       r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exponent>[+-]?[0-9]+)|(?P<decimal>[mkMGTPE]?))$")


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse(text: str) -> decimal.Decimal:
    """The exact value of a quantity (`1.5Gi` → 1610612736)."""
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity (e.g. 512Mi, 1Gi, 500m)")
    number = decimal.Decimal(match["number"])
    if match["binary"]:
        return number * _BINARY[match["binary"]]
    if match["exponent"] is not None:
        exponent = int(match["exponent"])
        if abs(exponent) > 30:
            raise QuantityError(f"{text!r}: exponent out of range")
        return number.scaleb(exponent)
    return number * _DECIMAL[match["decimal"] or ""]


def to_bytes(text: str) -> int:
    """A memory quantity in whole bytes, rounded up as Kubernetes does."""
    value = parse(text)
    if value <= 0:
        raise QuantityError(f"{text!r} must be positive")
    return math.ceil(value)


def format_bytes(value: int) -> str:
    """Bytes in the largest binary unit that divides them (for messages and labels)."""
    for unit in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if value % _BINARY[unit] == 0:
            return f"{value // _BINARY[unit]}{unit}"
    return str(value)
