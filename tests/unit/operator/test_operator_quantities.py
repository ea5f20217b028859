"""Kubernetes quantities: the grammar the CRD's CEL `quantity()` accepts, in exact bytes."""

from __future__ import annotations

import decimal

import pytest

from qd_operator import quantity


@pytest.mark.parametrize(("text", "expected"), [
    ("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1.5Gi", 3 * 2**29), ("64Ki", 65536), ("2Ti", 2 * 2**40),
    ("1k", 1000), ("1M", 10**6), ("1G", 10**9), ("128974848", 128974848), ("129e6", 129 * 10**6),
    ("1E3", 1000), (" 256Mi ", 256 * 2**20),
])
def test_memory_quantities_in_bytes(text: str, expected: int) -> None:
    assert quantity.to_bytes(text) == expected


def test_fractional_bytes_round_up_like_kubernetes() -> None:
    assert quantity.to_bytes("1.5") == 2
    assert quantity.to_bytes("0.1Ki") == 103  # 102.4 → 103


def test_millis_are_exact_for_cpu() -> None:
    assert quantity.parse("500m") == decimal.Decimal("0.5")
    assert quantity.parse("2") == 2


@pytest.mark.parametrize("text", ["", "Mi", "512MB", "512 Mi", "1.2.3Gi", "-", "1Gib", "0x10", "1e99"])
def test_invalid_quantities_are_refused(text: str) -> None:
    with pytest.raises(quantity.QuantityError):
        quantity.parse(text)


@pytest.mark.parametrize("text", ["0", "0Mi", "-1Gi"])
def test_memory_must_be_positive(text: str) -> None:
    with pytest.raises(quantity.QuantityError, match="positive"):
        quantity.to_bytes(text)


@pytest.mark.parametrize(("value", "text"), [(2**30, "1Gi"), (512 * 2**20, "512Mi"), (3072, "3Ki"), (1536, "1536")])
def test_format_bytes_uses_the_largest_exact_unit(value: int, text: str) -> None:
    assert quantity.format_bytes(value) == text
