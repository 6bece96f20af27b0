"""The rows of a torchinfo summary as the seed tables print them, shared by the seq_models seed-table tests."""

from __future__ import annotations

from typing import Any


def summary_rows(stats: Any) -> list[str]:
    """The rows of ``torchinfo.summary(...)`` without rules, header and blank lines; the units of the mult-adds line
    as the seed printed them (``(M)``, ``(G)``; newer torchinfo prints ``(Units.MEGABYTES)``)."""
    text = str(stats).replace("(Units.MEGABYTES)", "(M)").replace("(Units.GIGABYTES)", "(G)")
    return [ln.rstrip() for ln in text.splitlines() if ln.strip() and not ln.startswith("=") and not ln.startswith("Layer (")]


def table_rows(table: str) -> list[str]:
    """The rows of a seed table written as a string."""
    return [ln.rstrip() for ln in table.strip().splitlines()]
