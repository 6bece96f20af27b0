"""What several benchmark scripts share: timing a call over inputs, and the Markdown report of a run.

The scripts import it as ``from _shared import ...``: Python puts a script's own folder first on ``sys.path``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["call_times", "median_time", "write_markdown_report"]


def call_times(fn: Callable[[Any], Any], inputs: Iterable[Any]) -> list[float]:
    """Wall-clock seconds of ``fn(x)`` for each ``x`` of ``inputs``, in order."""
    times = []
    for x in inputs:
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return times


def median_time(fn: Callable[[int], Any], repeats: int) -> float:
    """Median wall-clock seconds of ``fn(0)``, ..., ``fn(repeats - 1)``."""
    return statistics.median(call_times(fn, range(repeats)))


def write_markdown_report(
    path: str | os.PathLike, title: str, made_by: str, script: str, argv: Sequence[str], text: str
) -> None:
    """Write (atomically) ``# title``, ``made_by:`` over the command that made the run, then ``text``.

    Args:
        path: the Markdown file.
        title: the page's heading.
        made_by: the line before the command, e.g. ``"Made by"`` or ``"Made by (CPU, 2 threads)"``.
        script: the script's file name in ``benchmarks/``.
        argv: the script's arguments.
        text: the report.
    """
    from monai_glue import atomic_open

    command = " ".join(["flock /tmp/heavy.lock python", f"benchmarks/{script}", *argv])
    with atomic_open(path) as f:
        f.write(f"# {title}\n\n{made_by}:\n\n```\n{command}\n```\n\n{text}\n")
