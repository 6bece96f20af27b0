"""The bundle's default data: a generated phantom dataset, made once and reused."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from .datalist import write_phantom_dataset
from .phantoms import DEFAULT_STRUCTURES

__all__ = ["ensure_phantom_datalist"]


def ensure_phantom_datalist(
    data_dir: str | os.PathLike,
    num_cases: int = 140,
    seed: int = 0,
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    datalist_name: str = "dataset.json",
) -> str:
    """Path of a phantom datalist in ``data_dir``, generating the dataset when it is missing or was made with
    other arguments (number of cases, seed, structures).

    Under ``torch.distributed`` only rank 0 writes; the other ranks wait at a barrier.

    Returns:
        The datalist JSON path, as a string (MONAI configs pass it on to ``load_datalist``).
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        # one process writes the dataset, the others wait for it
        path = None
        if dist.get_rank() == 0:
            path = _ensure(data_dir, num_cases, seed, structures, datalist_name)
        dist.barrier()
        return path or str(Path(data_dir) / datalist_name)
    return _ensure(data_dir, num_cases, seed, structures, datalist_name)


def _ensure(data_dir: str | os.PathLike, num_cases: int, seed: int, structures: Mapping[str, int], datalist_name: str) -> str:
    root = Path(data_dir)
    path = root / datalist_name
    wanted = {"num_cases": int(num_cases), "seed": int(seed), "structures": {str(k): int(v) for k, v in structures.items()}}
    stamp = root / ".generated_with.json"
    if path.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return str(path)
        except json.JSONDecodeError:
            pass
    out = write_phantom_dataset(root, num_cases=num_cases, seed=seed, structures=dict(structures), datalist_name=datalist_name, progress=True)
    stamp.write_text(json.dumps(wanted))
    return str(out)
