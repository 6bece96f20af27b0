"""The bundle's default data: a generated phantom dataset, made once and reused."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from monai_glue import atomic_open

from .datalist import write_phantom_dataset
from .phantoms import DEFAULT_STRUCTURES

__all__ = ["ensure_phantom_datalist", "DEFAULT_SPLITS", "GENERATORS"]

DEFAULT_SPLITS: tuple[float, float, float] = (0.7, 0.15, 0.15)
"""Training, validation and test fractions of the bundle's phantom datasets."""

GENERATORS: tuple[str, ...] = ("abdomen", "trunk")
"""Phantom generators: ``"abdomen"`` (:func:`~monai_sadaan.data.generate_phantom`, the shipped weights' world) and
``"trunk"`` (:func:`~monai_sadaan.data.trunk.generate_trunk_phantom`, whole trunk cut to clinical fields of view)."""


def ensure_phantom_datalist(
    data_dir: str | os.PathLike,
    num_cases: int = 140,
    seed: int = 0,
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    datalist_name: str = "dataset.json",
    splits: Sequence[float] = DEFAULT_SPLITS,
    scenario_weights: Mapping[str, float] | None = None,
    generator: str = "abdomen",
    fov_weights: Mapping[str, float] | None = None,
    domain_randomization: float = 0.0,
    num_workers: int = 0,
) -> str:
    """Path of a phantom datalist in ``data_dir``, generating the dataset when it is missing or was made with
    other arguments (number of cases, seed, structures, splits, scenario weights, generator and its options).

    ``splits`` are the training, validation and test fractions; ``(0, 0, 1)`` makes a held-out set whose every case
    is in the test split (what the bundle's quality table is scored on).

    ``scenario_weights`` maps scenario names to relative case counts, e.g. ``{"partial_fov": 4, "normal": 1, ...}``;
    scenarios it leaves out get no cases. ``None`` (default) gives every scenario the same share.

    ``generator`` picks the phantoms: ``"abdomen"`` (default, the abdominal phantoms the shipped weights were
    trained on) or ``"trunk"`` (whole-trunk phantoms cut to clinical fields of view; its scenarios add
    ``pancreatectomy``, and ``scenario_weights`` may name it). Trunk options: ``fov_weights`` (field-of-view name ->
    relative frequency, default :data:`~monai_sadaan.data.trunk.DEFAULT_FOV_WEIGHTS`) and ``domain_randomization``
    (fraction of cases rendered with random tissue intensities). The trunk generator's version is part of the
    stamp, so a dataset made by an older version of it is made anew. ``num_workers`` processes generate the cases
    (it does not change them and is not stamped).

    Under ``torch.distributed`` only rank 0 writes; the other ranks wait at a barrier.

    Returns:
        The datalist JSON path, as a string (MONAI configs pass it on to ``load_datalist``).
    """
    import torch.distributed as dist

    if generator not in GENERATORS:
        raise ValueError(f"expected generator one of {', '.join(GENERATORS)}, got {generator!r}")
    if generator == "abdomen" and (fov_weights is not None or domain_randomization):
        raise ValueError(
            "expected fov_weights=None and domain_randomization=0 with generator='abdomen' (they are trunk options), "
            f"got fov_weights={fov_weights!r}, domain_randomization={domain_randomization!r}"
        )
    options = {"generator": generator, "fov_weights": fov_weights, "domain_randomization": domain_randomization,
               "num_workers": num_workers}
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        # one process writes the dataset, the others wait for it
        path = None
        if dist.get_rank() == 0:
            path = _ensure(data_dir, num_cases, seed, structures, datalist_name, splits, scenario_weights, options)
        dist.barrier()
        return path or str(Path(data_dir) / datalist_name)
    return _ensure(data_dir, num_cases, seed, structures, datalist_name, splits, scenario_weights, options)


def _ensure(
    data_dir: str | os.PathLike,
    num_cases: int,
    seed: int,
    structures: Mapping[str, int],
    datalist_name: str,
    splits: Sequence[float],
    scenario_weights: Mapping[str, float] | None,
    options: dict,
) -> str:
    root = Path(data_dir)
    generator = options["generator"]
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
    trunk_args: dict = {}
    if generator == "trunk":
        from .trunk import TRUNK_GENERATOR_VERSION, check_fov_weights
        from .trunk.dataset import check_domain_randomization

        fov = check_fov_weights(options["fov_weights"])
        fraction = check_domain_randomization(options["domain_randomization"])
        trunk_args = {"fov_weights": fov, "domain_randomization": fraction}
        # stamps of abdominal datasets stay as they were; trunk ones record the generator, its version and options
        wanted.update(generator="trunk", generator_version=TRUNK_GENERATOR_VERSION, fov_weights=fov,
                      domain_randomization=fraction)

    def make() -> str | os.PathLike:
        if generator == "trunk":
            from .trunk.dataset import write_trunk_dataset

            return write_trunk_dataset(
                root, num_cases=num_cases, seed=seed, splits=splits, structures=dict(structures),
                datalist_name=datalist_name, progress=True, num_workers=int(options["num_workers"]), **scenario_args,
                **trunk_args,
            )  # fmt: skip
        return write_phantom_dataset(
            root, num_cases=num_cases, seed=seed, splits=splits, structures=dict(structures),
            datalist_name=datalist_name, progress=True, num_workers=int(options["num_workers"]), **scenario_args,
        )  # fmt: skip

    return reuse_or_generate(root, path, wanted, make)


def reuse_or_generate(root: Path, datalist: Path, wanted: dict, make: Callable[[], str | os.PathLike]) -> str:
    """The datalist at ``datalist`` when ``root/.generated_with.json`` records exactly ``wanted``; otherwise
    ``make()`` writes the data set (returning its datalist path) and the stamp is written after it, atomically, so an
    interrupted generation is redone on the next call.

    Args:
        root: the data set's folder.
        datalist: the datalist JSON path a previous generation wrote.
        wanted: JSON-ready description of the data set asked for (arguments, generator version).
        make: writes the data set; called only when the stamp does not match.

    Returns:
        The datalist path, as a string (MONAI configs pass it to ``load_datalist``).
    """
    stamp = root / ".generated_with.json"
    if datalist.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return str(datalist)
        except json.JSONDecodeError:
            pass
    out = make()
    with atomic_open(stamp, "w", encoding="utf-8") as f:
        json.dump(wanted, f)
    return str(out)
