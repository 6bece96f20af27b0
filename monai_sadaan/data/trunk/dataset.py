"""Trunk phantom datasets on disk: NIfTI cases plus a decathlon-style datalist JSON (the layout of
:func:`~monai_sadaan.data.write_phantom_dataset`), with the field of view, phase and intensity mode per entry."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..datalist import SPLITS, _case_seed, allocate_counts, map_jobs, stratified_split_counts
from ..geometry import parse_orientation
from ..phantoms import DEFAULT_STRUCTURES, check_structures
from ..scenarios import TRUNK_SCENARIOS, check_scenarios
from ..writers import save_phantom
from .generator import TRUNK_GENERATOR_VERSION, _triple, check_fov_weights, generate_trunk_phantom
from .physics import PHASES

__all__ = ["write_trunk_dataset", "check_domain_randomization"]


def check_domain_randomization(fraction: float) -> float:
    """Validate the fraction of domain-randomised cases (a number in [0, 1])."""
    number = isinstance(fraction, (int, float, np.number)) and not isinstance(fraction, bool)
    if not number or not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"expected domain_randomization as a fraction in [0, 1], got {fraction!r}")
    return float(fraction)


def _intensity_mode(case_seed: int, fraction: float) -> str:
    """``"random"`` for a deterministic ``fraction`` of the case seeds."""
    draw = np.random.default_rng([int(case_seed), 0x5D0A]).random()
    return "random" if draw < fraction else "ct"


def _write_case(job: tuple) -> dict:
    """Generate and write one trunk case; returns its datalist entry (module-level for worker processes)."""
    index, scenario, case_seed, root, structures, options, image_dtype = job
    phantom = generate_trunk_phantom(scenario, case_seed, structures, **options)
    name = f"sadaan_trunk_{index:04d}.nii.gz"
    save_phantom(phantom, Path(root) / "imagesTr" / name, Path(root) / "labelsTr" / name, image_dtype=image_dtype)
    return {
        "image": f"imagesTr/{name}",
        "label": f"labelsTr/{name}",
        "scenario": scenario,
        "present": dict(phantom.present),
        "seed": case_seed,
        "shape": list(phantom.shape),
        "spacing": [round(s, 6) for s in phantom.spacing],
        "orientation": phantom.orientation,
        "truncated": list(phantom.truncated),
        "field_of_view": phantom.field_of_view,
        "phase": phantom.phase,
        "intensity_mode": phantom.intensity_mode,
    }


def write_trunk_dataset(
    output_dir: str | os.PathLike,
    num_cases: int,
    seed: int = 0,
    scenarios: Sequence[str] = TRUNK_SCENARIOS,
    weights: Sequence[float] | None = None,
    splits: Sequence[float] = (0.7, 0.15, 0.15),
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    min_voxels: int = 20,
    fov_weights: Mapping[str, float] | None = None,
    domain_randomization: float = 0.0,
    phase: str = "random",
    shape: int | Sequence[int] | None = None,
    orientation: str | None = None,
    datalist_name: str = "dataset.json",
    progress: bool | Callable = False,
    num_workers: int = 0,
    preview: int = 0,
    image_dtype: str = "float32",
) -> Path:
    """Generate ``num_cases`` trunk phantoms, write them as NIfTI and write a decathlon-style datalist.

    Scenario counts and splits follow :func:`~monai_sadaan.data.write_phantom_dataset` (largest remainder,
    stratified by scenario); case ``i`` is ``generate_trunk_phantom(scenario_i, seed=case_seed_i, ...)`` with the
    case seed derived from ``(seed, i)``, and a deterministic ``domain_randomization`` fraction of the case seeds is
    rendered with ``intensity_mode="random"``. The JSON is written last.

    Args:
        output_dir: dataset folder (created).
        num_cases: number of cases (>= 1).
        seed: dataset seed.
        scenarios: names from :data:`~monai_sadaan.data.scenarios.TRUNK_SCENARIOS`.
        weights: relative frequency of each scenario; default equal.
        splits: fractions of training, validation and test.
        structures: labelled structures, name -> label value.
        min_voxels: presence threshold.
        fov_weights: relative frequency per field of view (default
            :data:`~monai_sadaan.data.trunk.DEFAULT_FOV_WEIGHTS`).
        domain_randomization: fraction of cases with random tissue intensities, in [0, 1].
        phase: contrast phase of every case, or ``"random"``.
        shape: fixed grid for every case; default random.
        orientation: fixed orientation code; default random.
        datalist_name: JSON file name inside ``output_dir``.
        progress: True for a tqdm bar, or a callable wrapping the case iterator.
        num_workers: processes generating cases in parallel (0: this process); the output is the same.
        preview: draw the first ``preview`` cases into ``preview.png``; 0 for none.
        image_dtype: ``"float32"`` or ``"int16"``.

    Returns:
        Path of the datalist JSON.
    """
    scenarios = check_scenarios(scenarios, TRUNK_SCENARIOS)
    structures = check_structures(structures)
    fov = check_fov_weights(fov_weights)
    fraction = check_domain_randomization(domain_randomization)
    if isinstance(num_cases, bool) or not isinstance(num_cases, (int, np.integer)) or num_cases < 1:
        raise ValueError(f"expected num_cases as an integer >= 1, got {num_cases!r}")
    if weights is None:
        weights = [1.0] * len(scenarios)
    if len(weights) != len(scenarios):
        raise ValueError(f"expected one weight per scenario ({len(scenarios)}), got {len(weights)} weights")
    if len(splits) != 3:
        raise ValueError(f"expected three split fractions (training, validation, test), got {list(splits)}")
    allocate_counts(1, weights)
    allocate_counts(1, splits)
    _triple(shape, "shape", int)
    if orientation is not None:
        parse_orientation(orientation)
    if image_dtype not in ("float32", "int16"):
        raise ValueError(f"expected image_dtype 'float32' or 'int16', got {image_dtype!r}")
    if isinstance(min_voxels, bool) or not isinstance(min_voxels, (int, np.integer)) or min_voxels < 1:
        raise ValueError(f"expected min_voxels as an integer >= 1, got {min_voxels!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise ValueError(f"expected num_workers as an integer >= 0, got {num_workers!r}")
    if phase != "random" and phase not in PHASES:
        raise ValueError(f"expected phase 'random' or one of {', '.join(PHASES)}, got {phase!r}")

    per_scenario = allocate_counts(int(num_cases), weights)
    plan: list[tuple[str, str]] = []
    for scenario, count in zip(scenarios, per_scenario):
        for split, n in zip(SPLITS, stratified_split_counts(count, splits)):
            plan.extend((scenario, split) for _ in range(n))
    order = np.random.default_rng(int(seed)).permutation(len(plan))
    plan = [plan[i] for i in order]

    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    jobs = []
    for index, (scenario, _) in enumerate(plan):
        case_seed = _case_seed(seed, index)
        options = {"fov_weights": fov, "phase": phase, "intensity_mode": _intensity_mode(case_seed, fraction),
                   "shape": shape, "orientation": orientation, "min_voxels": int(min_voxels)}
        jobs.append((index, scenario, case_seed, str(root), structures, options, image_dtype))
    lists: dict[str, list[dict]] = {split: [] for split in SPLITS}
    with map_jobs(_write_case, jobs, num_workers, progress, desc="trunk phantoms", unit="case") as entries:
        for (_, split), entry in zip(plan, entries):
            lists[split].append(entry)

    datalist = {
        "name": "SADAAn synthetic whole-trunk CT phantoms",
        "description": "CT-like trunk phantoms cut to clinical fields of view (monai_sadaan.data.trunk)",
        "reference": "synthetic",
        "licence": "CC0",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": {"0": "background", **{str(v): k for k, v in sorted(structures.items(), key=lambda kv: kv[1])}},
        "structures": dict(structures),
        "min_voxels": int(min_voxels),
        "scenarios": list(scenarios),
        "generator": {
            "name": "trunk",
            "version": TRUNK_GENERATOR_VERSION,
            "seed": int(seed),
            "num_cases": int(num_cases),
            "weights": [float(w) for w in weights],
            "splits": [float(s) for s in splits],
            "fov_weights": fov,
            "domain_randomization": fraction,
            "phase": phase,
        },
        "numTraining": len(lists["training"]),
        "numValidation": len(lists["validation"]),
        "numTest": len(lists["test"]),
        **lists,
    }
    if preview > 0:
        from .preview import plot_trunk_overview

        shown = [generate_trunk_phantom(job[1], job[2], structures, **job[5]) for job in jobs[: int(preview)]]
        plot_trunk_overview(shown, root / "preview.png")
    path = root / datalist_name
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(datalist, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path
