"""Trunk phantom datasets on disk: NIfTI cases plus a decathlon-style datalist JSON (the layout of
:func:`~monai_sadaan.data.write_phantom_dataset`), with the field of view, phase and intensity mode per entry."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..datalist import (
    _case_jobs,
    _check_dataset_args,
    _datalist,
    _finish_dataset,
    _generator_stamp,
    _plan_cases,
    _save_case,
    _write_cases,
)
from ..phantoms import DEFAULT_STRUCTURES, check_structures
from ..scenarios import TRUNK_SCENARIOS, check_scenarios
from .generator import TRUNK_GENERATOR_VERSION, check_fov_weights, generate_trunk_phantom
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
    entry = _save_case(phantom, root, f"sadaan_trunk_{index:04d}.nii.gz", case_seed, image_dtype)
    entry.update(field_of_view=phantom.field_of_view, phase=phantom.phase, intensity_mode=phantom.intensity_mode)
    return entry


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
    weights = _check_dataset_args(
        num_cases, scenarios, weights, splits, shape, None, orientation, image_dtype, min_voxels, num_workers
    )
    if phase != "random" and phase not in PHASES:
        raise ValueError(f"expected phase 'random' or one of {', '.join(PHASES)}, got {phase!r}")

    plan = _plan_cases(num_cases, seed, scenarios, weights, splits)

    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)

    def options(case_seed: int) -> dict:
        return {"fov_weights": fov, "phase": phase, "intensity_mode": _intensity_mode(case_seed, fraction),
                "shape": shape, "orientation": orientation, "min_voxels": int(min_voxels)}

    jobs = _case_jobs(plan, seed, root, structures, image_dtype, options)
    lists = _write_cases(_write_case, jobs, plan, num_workers, progress, "trunk phantoms")
    generator = {
        "name": "trunk",
        "version": TRUNK_GENERATOR_VERSION,
        **_generator_stamp(num_cases, seed, weights, splits),
        "fov_weights": fov,
        "domain_randomization": fraction,
        "phase": phase,
    }
    datalist = _datalist(
        "SADAAn synthetic whole-trunk CT phantoms",
        "CT-like trunk phantoms cut to clinical fields of view (monai_sadaan.data.trunk)",
        structures,
        min_voxels,
        scenarios,
        generator,
        lists,
    )
    from .preview import plot_trunk_overview

    return _finish_dataset(root, datalist, datalist_name, jobs, preview, generate_trunk_phantom, plot_trunk_overview)
