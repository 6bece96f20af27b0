"""The bundle's default data: a generated phantom dataset, made once and reused."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .datalist import write_phantom_dataset
from .phantoms import DEFAULT_STRUCTURES

__all__ = ["ensure_phantom_datalist", "DEFAULT_SPLITS"]

DEFAULT_SPLITS: tuple[float, float, float] = (0.7, 0.15, 0.15)
"""Training, validation and test fractions of the bundle's phantom datasets."""


def ensure_phantom_datalist(
    data_dir: str | os.PathLike,
    num_cases: int = 140,
    seed: int = 0,
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    datalist_name: str = "dataset.json",
    splits: Sequence[float] = DEFAULT_SPLITS,
    scenario_weights: Mapping[str, float] | None = None,
) -> str:
    """Path of a phantom datalist in ``data_dir``, generating the dataset when it is missing or was made with
    other arguments (number of cases, seed, structures, splits, scenario weights).

    ``splits`` are the training, validation and test fractions; ``(0, 0, 1)`` makes a held-out set whose every case
    is in the test split (what the bundle's quality table is scored on).

    ``scenario_weights`` maps scenario names to relative case counts, e.g. ``{"partial_fov": 4, "normal": 1, ...}``;
    scenarios it leaves out get no cases. ``None`` (default) gives every scenario the same share.

    Under ``torch.distributed`` only rank 0 writes; the other ranks wait at a barrier.

    Returns:
        The datalist JSON path, as a string (MONAI configs pass it on to ``load_datalist``).
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        # one process writes the dataset, the others wait for it
        path = None
        if dist.get_rank() == 0:
            path = _ensure(data_dir, num_cases, seed, structures, datalist_name, splits, scenario_weights)
        dist.barrier()
        return path or str(Path(data_dir) / datalist_name)
    return _ensure(data_dir, num_cases, seed, structures, datalist_name, splits, scenario_weights)


def _ensure(
    data_dir: str | os.PathLike,
    num_cases: int,
    seed: int,
    structures: Mapping[str, int],
    datalist_name: str,
    splits: Sequence[float],
    scenario_weights: Mapping[str, float] | None,
) -> str:
    root = Path(data_dir)
    path = root / datalist_name
    splits = [float(f) for f in splits]  # write_phantom_dataset checks them before it writes anything
    wanted: dict = {"num_cases": int(num_cases), "seed": int(seed), "structures": {str(k): int(v) for k, v in structures.items()}}
    if splits != list(DEFAULT_SPLITS):
        wanted["splits"] = splits  # stamps of datasets with the default splits stay as they were
    scenario_args: dict = {}
    if scenario_weights is not None:
        if not isinstance(scenario_weights, Mapping) or not scenario_weights:
            raise ValueError(
                f"expected scenario_weights as a non-empty mapping of scenario name to weight, got {scenario_weights!r}"
            )
        weights = {str(k): float(v) for k, v in scenario_weights.items()}
        scenario_args = {"scenarios": list(weights), "weights": list(weights.values())}
        wanted["scenario_weights"] = weights
    stamp = root / ".generated_with.json"
    if path.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return str(path)
        except json.JSONDecodeError:
            pass
    out = write_phantom_dataset(
        root, num_cases=num_cases, seed=seed, splits=splits, structures=dict(structures), datalist_name=datalist_name,
        progress=True, **scenario_args,
    )  # fmt: skip
    stamp.write_text(json.dumps(wanted))
    return str(out)
