"""Phantom datasets on disk: NIfTI cases plus a MONAI decathlon-style datalist JSON, and a checked loader.

Layout written by :func:`write_phantom_dataset`::

    output_dir/
        dataset.json          name, labels, structures, training / validation / test lists
        imagesTr/sadaan_0000.nii.gz ...
        labelsTr/sadaan_0000.nii.gz ...

Every list entry is ``{"image", "label", "scenario", "present": {name: bool}, ...}`` with paths relative to the
JSON's folder, the form ``monai.data.load_decathlon_datalist`` reads. Splits are stratified by scenario.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_glue import atomic_open
from .geometry import parse_orientation
from .phantoms import DEFAULT_STRUCTURES, Phantom, _triple, check_structures, generate_phantom
from .scenarios import SCENARIOS, check_scenarios
from .writers import save_phantom

__all__ = [
    "SPLITS",
    "DatalistError",
    "allocate_counts",
    "stratified_split_counts",
    "write_phantom_dataset",
    "load_datalist",
    "map_jobs",
]

SPLITS: tuple[str, ...] = ("training", "validation", "test")


class DatalistError(ValueError):
    """A datalist JSON lacks a split, an entry lacks a key, or a file it names is missing."""


def allocate_counts(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder; ties to the earlier entry).

    >>> allocate_counts(10, [0.7, 0.15, 0.15])
    [7, 2, 1]
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or len(w) == 0 or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"expected non-negative weights with a positive sum, got {list(weights)}")
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(w)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - int(counts.sum())]:
        counts[i] += 1
    return counts.tolist()


def stratified_split_counts(count: int, splits: Sequence[float]) -> list[int]:
    """Cases of one scenario per split: proportional to ``splits``, but every split with a positive fraction gets at
    least one case when ``count`` allows it (taken from the largest split)."""
    counts = allocate_counts(count, splits)
    wanted = [i for i, f in enumerate(splits) if f > 0]
    if count >= len(wanted):
        for i in wanted:
            if counts[i] == 0:
                donor = max(range(len(counts)), key=lambda j: (counts[j], -j))
                counts[donor] -= 1
                counts[i] += 1
    return counts


@contextlib.contextmanager
def map_jobs(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    num_workers: int = 0,
    progress: bool | Callable = False,
    desc: str = "jobs",
    unit: str = "job",
) -> Iterator[Iterable[Any]]:
    """``fn`` over ``jobs`` in order, in this process or in ``num_workers`` spawned processes, with an optional
    progress bar; the worker pool is shut down when the block exits (pending jobs cancelled on an error).

    Args:
        fn: a module-level function (worker processes import it by name).
        jobs: its arguments, one per call.
        num_workers: processes; 0 runs every call in this process, lazily.
        progress: ``True`` for a tqdm bar, or a callable wrapping the result iterator.
        desc, unit: the tqdm bar's label and unit.

    Yields:
        The results, in the order of ``jobs``.
    """
    executor = None
    if num_workers > 0:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(int(num_workers), mp_context=multiprocessing.get_context("spawn"))
        results: Iterable[Any] = executor.map(fn, jobs)
    else:
        results = map(fn, jobs)
    if progress is True:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(jobs), desc=desc, unit=unit)
    elif callable(progress):
        results = progress(results)
    try:
        yield results
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)


def _case_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _check_dataset_args(
    num_cases: int,
    scenarios: Sequence[str],
    weights: Sequence[float] | None,
    splits: Sequence[float],
    shape: int | Sequence[int] | None,
    spacing: float | Sequence[float] | None,
    orientation: str | None,
    image_dtype: str,
    min_voxels: int,
    num_workers: int,
) -> list[float]:
    """Validate the arguments the dataset writers share, before anything is written.

    Returns:
        The scenario weights (equal ones when ``weights`` is ``None``).

    Raises:
        ValueError: a bad case count, weights, split fractions, grid, image dtype, threshold or worker count.
    """
    if isinstance(num_cases, bool) or not isinstance(num_cases, (int, np.integer)) or num_cases < 1:
        raise ValueError(f"expected num_cases as an integer >= 1, got {num_cases!r}")
    if weights is None:
        weights = [1.0] * len(scenarios)
    if len(weights) != len(scenarios):
        raise ValueError(f"expected one weight per scenario ({len(scenarios)}), got {len(weights)} weights")
    if len(splits) != 3:
        raise ValueError(f"expected three split fractions (training, validation, test), got {list(splits)}")
    allocate_counts(1, weights)  # validates
    allocate_counts(1, splits)
    _triple(shape, "shape", int)
    _triple(spacing, "spacing", float)
    if orientation is not None:
        parse_orientation(orientation)
    if image_dtype not in ("float32", "int16"):
        raise ValueError(f"expected image_dtype 'float32' or 'int16', got {image_dtype!r}")
    if isinstance(min_voxels, bool) or not isinstance(min_voxels, (int, np.integer)) or min_voxels < 1:
        raise ValueError(f"expected min_voxels as an integer >= 1, got {min_voxels!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise ValueError(f"expected num_workers as an integer >= 0, got {num_workers!r}")
    return list(weights)


def _plan_cases(
    num_cases: int, seed: int, scenarios: Sequence[str], weights: Sequence[float], splits: Sequence[float]
) -> list[tuple[str, str]]:
    """``(scenario, split)`` of each case: scenario counts by ``weights`` (largest remainder), each scenario's cases
    stratified over the splits, then shuffled by ``seed`` so that a prefix of the case numbers is already mixed."""
    per_scenario = allocate_counts(int(num_cases), weights)
    plan: list[tuple[str, str]] = []
    for scenario, count in zip(scenarios, per_scenario):
        for split, n in zip(SPLITS, stratified_split_counts(count, splits)):
            plan.extend((scenario, split) for _ in range(n))
    order = np.random.default_rng(int(seed)).permutation(len(plan))
    return [plan[i] for i in order]


def _case_jobs(
    plan: Sequence[tuple[str, str]],
    seed: int,
    root: Path,
    structures: Mapping[str, int],
    image_dtype: str,
    options: Callable[[int], dict],
) -> list[tuple]:
    """One job per planned case: ``(index, scenario, case_seed, root, structures, options(case_seed), image_dtype)``,
    the case seed derived from ``(seed, index)``."""
    jobs = []
    for index, (scenario, _) in enumerate(plan):
        case_seed = _case_seed(seed, index)
        jobs.append((index, scenario, case_seed, str(root), structures, options(case_seed), image_dtype))
    return jobs


def _save_case(phantom: Phantom, root: str | os.PathLike, name: str, case_seed: int, image_dtype: str) -> dict:
    """Write a case as ``imagesTr/name`` and ``labelsTr/name`` under ``root``; returns its datalist entry."""
    save_phantom(phantom, Path(root) / "imagesTr" / name, Path(root) / "labelsTr" / name, image_dtype=image_dtype)
    return {
        "image": f"imagesTr/{name}",
        "label": f"labelsTr/{name}",
        "scenario": phantom.scenario,
        "present": dict(phantom.present),
        "seed": case_seed,
        "shape": list(phantom.shape),
        "spacing": [round(s, 6) for s in phantom.spacing],
        "orientation": phantom.orientation,
        "truncated": list(phantom.truncated),
    }


def _write_cases(
    write_case: Callable[[tuple], dict],
    jobs: Sequence[tuple],
    plan: Sequence[tuple[str, str]],
    num_workers: int,
    progress: bool | Callable,
    desc: str,
) -> dict[str, list[dict]]:
    """Run ``write_case`` over ``jobs`` (see :func:`map_jobs`); returns the entries per split of the ``plan``."""
    lists: dict[str, list[dict]] = {split: [] for split in SPLITS}
    with map_jobs(write_case, jobs, num_workers, progress, desc=desc, unit="case") as entries:
        for (_, split), entry in zip(plan, entries):
            lists[split].append(entry)
    return lists


def _generator_stamp(num_cases: int, seed: int, weights: Sequence[float], splits: Sequence[float]) -> dict:
    """The datalist's ``generator`` keys that every dataset writer records."""
    return {
        "seed": int(seed),
        "num_cases": int(num_cases),
        "weights": [float(w) for w in weights],
        "splits": [float(s) for s in splits],
    }


def _datalist(
    name: str,
    description: str,
    structures: Mapping[str, int],
    min_voxels: int,
    scenarios: Sequence[str],
    generator: Mapping[str, Any],
    lists: Mapping[str, list[dict]],
) -> dict:
    """The decathlon-style datalist: name, labels, structures, the generator's stamp, split counts and lists."""
    return {
        "name": name,
        "description": description,
        "reference": "synthetic",
        "licence": "CC0",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": {"0": "background", **{str(v): k for k, v in sorted(structures.items(), key=lambda kv: kv[1])}},
        "structures": dict(structures),
        "min_voxels": int(min_voxels),
        "scenarios": list(scenarios),
        "generator": dict(generator),
        "numTraining": len(lists["training"]),
        "numValidation": len(lists["validation"]),
        "numTest": len(lists["test"]),
        **lists,
    }


def _finish_dataset(
    root: Path,
    datalist: Mapping[str, Any],
    datalist_name: str,
    jobs: Sequence[tuple],
    preview: int,
    generate: Callable[..., Phantom],
    plot: Callable[[list[Phantom], Path], Path],
) -> Path:
    """Draw the first ``preview`` cases of ``jobs`` (made anew with ``generate``) into ``root/preview.png`` with
    ``plot``, then write the datalist JSON atomically (last: a folder without it is incomplete); returns its path."""
    if preview > 0:
        shown = [generate(job[1], job[2], job[4], **job[5]) for job in jobs[: int(preview)]]
        plot(shown, root / "preview.png")
    path = root / datalist_name
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(datalist, f, indent=2)
        f.write("\n")
    return path


def _write_case(job: tuple) -> dict:
    """Generate and write one case; returns its datalist entry (a module-level function so processes can run it)."""
    index, scenario, case_seed, root, structures, grid, image_dtype = job
    phantom = generate_phantom(scenario, case_seed, structures, **grid)
    return _save_case(phantom, root, f"sadaan_{index:04d}.nii.gz", case_seed, image_dtype)


def write_phantom_dataset(
    output_dir: str | os.PathLike,
    num_cases: int,
    seed: int = 0,
    scenarios: Sequence[str] = SCENARIOS,
    weights: Sequence[float] | None = None,
    splits: Sequence[float] = (0.7, 0.15, 0.15),
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    min_voxels: int = 20,
    shape: int | Sequence[int] | None = None,
    spacing: float | Sequence[float] | None = None,
    orientation: str | None = None,
    datalist_name: str = "dataset.json",
    progress: bool | Callable = False,
    num_workers: int = 0,
    preview: int = 0,
    image_dtype: str = "float32",
) -> Path:
    """Generate ``num_cases`` phantoms, write them as NIfTI and write a decathlon-style datalist.

    Scenario counts are ``num_cases`` split by ``weights`` (largest remainder, not random draws), and each
    scenario's cases are split by ``splits`` so that every scenario appears in every split when it has enough cases.
    Case ``i`` is ``generate_phantom(scenario_i, seed=case_seed_i)`` with a case seed derived from ``(seed, i)``,
    so a dataset is reproducible from its arguments. The JSON is written last: a folder without it is incomplete.

    Args:
        output_dir: dataset folder (created).
        num_cases: number of cases (>= 1).
        seed: dataset seed.
        scenarios: scenario names to draw from.
        weights: relative frequency of each scenario; default equal.
        splits: fractions of training, validation and test (normalised).
        structures: labelled structures, name -> label value.
        min_voxels: presence threshold stored with the cases.
        shape, spacing, orientation: fixed grid for every case (see :func:`generate_phantom`); default random.
        datalist_name: JSON file name inside ``output_dir``.
        progress: True for a tqdm bar, or a callable wrapping the case iterator.
        num_workers: processes that generate and write cases in parallel; 0 writes them in this process. The
            output is the same either way.
        image_dtype: ``"float32"`` or ``"int16"`` (rounded HU, half the disk space) for the image files.
        preview: draw the first ``preview`` cases into ``preview.png`` (axial and coronal slices with label
            outlines); 0 for none.

    Returns:
        Path of the datalist JSON.
    """
    scenarios = check_scenarios(scenarios)
    structures = check_structures(structures)
    weights = _check_dataset_args(
        num_cases, scenarios, weights, splits, shape, spacing, orientation, image_dtype, min_voxels, num_workers
    )
    plan = _plan_cases(num_cases, seed, scenarios, weights, splits)

    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    grid = {"shape": shape, "spacing": spacing, "orientation": orientation, "min_voxels": int(min_voxels)}
    jobs = _case_jobs(plan, seed, root, structures, image_dtype, lambda _: grid)
    lists = _write_cases(_write_case, jobs, plan, num_workers, progress, "phantoms")
    datalist = _datalist(
        "SADAAn synthetic abdominal phantoms",
        "CT-like phantoms with absent organs (monai_sadaan.data.write_phantom_dataset)",
        structures,
        min_voxels,
        scenarios,
        _generator_stamp(num_cases, seed, weights, splits),
        lists,
    )
    from .preview import plot_phantom_overview

    return _finish_dataset(root, datalist, datalist_name, jobs, preview, generate_phantom, plot_phantom_overview)


def load_datalist(
    path: str | os.PathLike,
    split: str = "training",
    keys: Sequence[str] = ("image", "label"),
    base_dir: str | os.PathLike | None = None,
    check_files: bool = True,
) -> list[dict]:
    """Read one split of a decathlon-style datalist, resolve its paths and check them.

    Args:
        path: the JSON file.
        split: list to read (``"training"``, ``"validation"``, ``"test"``...).
        keys: keys every entry must hold; their values are paths, resolved against ``base_dir``.
        base_dir: folder the relative paths start from; default the JSON's folder.
        check_files: raise when a resolved path does not exist.

    Returns:
        The entries (copies) with absolute path strings under ``keys``; other keys unchanged.

    Raises:
        DatalistError: missing or unreadable JSON, missing split, an entry that is not a dict or lacks a key,
            or a missing file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatalistError(f"expected a datalist JSON file, got a missing path: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DatalistError(f"expected a valid JSON datalist, got a parse error in {path}: {e}") from e
    if not isinstance(data, dict):
        raise DatalistError(f"expected a JSON object at the top of {path}, got {type(data).__name__}")
    if split not in data:
        found = ", ".join(k for k, v in data.items() if isinstance(v, list)) or "none"
        raise DatalistError(f"datalist {path} has no {split!r} list; lists found: {found}")
    entries = data[split]
    if not isinstance(entries, list):
        raise DatalistError(f"expected {split!r} in {path} to be a list of entries, got {type(entries).__name__}")
    base = Path(base_dir) if base_dir is not None else path.parent
    out = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str) and len(keys) == 1:
            entry = {keys[0]: entry}
        if not isinstance(entry, dict):
            raise DatalistError(
                f"datalist entry {i} of {split!r} is a {type(entry).__name__}; expected a dict with keys {', '.join(keys)}"
            )
        item = dict(entry)
        for key in keys:
            if key not in item:
                raise DatalistError(
                    f"datalist entry {i} of {split!r} has no {key!r} key; expected keys {', '.join(keys)}"
                )
            value = item[key]
            if not isinstance(value, str) or not value:
                raise DatalistError(f"datalist entry {i} of {split!r}: expected a path string for {key!r}, got {value!r}")
            resolved = Path(value) if os.path.isabs(value) else base / value
            resolved = resolved.resolve()
            if check_files and not resolved.exists():
                raise DatalistError(f"datalist entry {i} of {split!r}: {key} file does not exist: {resolved}")
            item[key] = str(resolved)
        out.append(item)
    return out
