"""Training data for the cascade's stage 2 (:mod:`monai_sadaan.inferers.cascade`): fine crops around present organs.

For each trunk case (:func:`~monai_sadaan.data.trunk.generate_trunk_phantom`), a small rendering of the whole field
of view (``locator_shape``) finds the organs; each present structure then gets its own crop, rendered by the same
generator at ``fine_spacing`` over the organ's box plus a random margin and shift (``crop``: only the crop's voxels
are made), with a simulated stage-1 context: the structure's mask averaged onto stage 1's ~8 mm grid, shifted,
dilated or eroded, blurred, squashed into probabilities and resampled (trilinear) onto the crop, as the cascade
resamples stage 1's probabilities into its boxes.

Layout written by :func:`write_refine_dataset` (decathlon style, like
:func:`~monai_sadaan.data.write_phantom_dataset`)::

    output_dir/
        dataset.json              training / validation / test lists, written last
        imagesTr/refine_0000_liver.nii.gz    CT (HU, int16), RAS, fine spacing
        contextTr/refine_0000_liver.nii.gz   simulated stage-1 probability of the structure (float32)
        labelsTr/refine_0000_liver.nii.gz    the structure's mask (uint8)

Entries: ``{"image", "context", "label", "structure", "structure_index", "scenario", "seed", "shape", "spacing"}``;
all crops of a case are in one split. The dataset is a pure function of its arguments (case seeds derived from
``seed``), every file is written atomically, and :func:`ensure_refine_datalist` remakes it only when the arguments
(or the trunk generator's version) changed. The real CTs are never read here.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monai_glue import atomic_open
from .datalist import SPLITS, _case_seed, _check_dataset_args, _plan_cases, map_jobs
from .phantoms import DEFAULT_STRUCTURES, check_structures
from .scenarios import TRUNK_SCENARIOS, check_scenarios
from .writers import save_volume

__all__ = [
    "REFINE_FOV_WEIGHTS",
    "RefineCrop",
    "ensure_refine_datalist",
    "generate_refine_crops",
    "simulate_stage1_context",
    "write_refine_dataset",
]

REFINE_FOV_WEIGHTS: dict[str, float] = {"abdomen": 0.4, "abdomen_pelvis": 0.2, "chest_abdomen": 0.2, "whole_trunk": 0.2}
"""Fields of view of the crop cases: those that hold the abdominal organs (chest, pelvis and slabs hold few)."""


@dataclass
class RefineCrop:
    """One training crop of stage 2.

    Attributes:
        structure: the structure's name; ``structure_index`` its 0-based index in ``structures``.
        image: ``[D, H, W]`` float32 HU, RAS voxel order, at the fine spacing.
        label: ``[D, H, W]`` uint8 mask of the structure.
        context: ``[D, H, W]`` float32 simulated stage-1 probability of the structure.
        affine: ``(4, 4)`` voxel-to-world affine (RAS).
    """

    structure: str
    structure_index: int
    image: np.ndarray
    label: np.ndarray
    context: np.ndarray
    affine: np.ndarray


def simulate_stage1_context(
    mask: np.ndarray,
    spacing: Sequence[float],
    rng: np.random.Generator,
    coarse_mm: float = 8.0,
    max_shift: float = 0.6,
    morphology: float = 0.5,
    blur: tuple[float, float] = (0.3, 1.0),
    sharpness: tuple[float, float] = (4.0, 12.0),
    level: tuple[float, float] = (0.3, 0.7),
) -> np.ndarray:
    """What stage 1 might say about a structure: ``[D, H, W]`` float32 probabilities in ``[0, 1]``.

    The mask is averaged onto a grid of ``coarse_mm`` voxels (``area``), shifted by up to ``max_shift`` coarse voxels
    per axis (linear), dilated or eroded by one coarse voxel (each with probability ``morphology / 2``), blurred
    (Gaussian, ``blur`` coarse voxels), scaled to a peak of 1 (stage 1 masks a structure it calls present, however
    thin), turned into probabilities ``sigmoid(k (x - t))`` (``k`` in ``sharpness``,
    ``t`` in ``level``: a low ``t`` grows the blob, a high one shrinks it) and resampled trilinearly onto the mask's
    grid.

    Args:
        mask: ``[D, H, W]`` the structure's voxels at the fine spacing.
        spacing: the fine voxel size (mm) per axis.
        rng: the random stream.
        coarse_mm: stage 1's voxel size (a clinical CT's field of view over 48 voxels is about 8 mm).

    Raises:
        ValueError: ``mask`` is not 3-D or the spacings are not positive.
    """
    import torch
    import torch.nn.functional as F
    from scipy import ndimage

    m = np.asarray(mask)
    sp = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
    if m.ndim != 3 or not (sp > 0).all() or not coarse_mm > 0:
        raise ValueError(
            f"expected a 3-D mask and positive spacings, got a mask of shape {m.shape}, spacing {sp.tolist()} and "
            f"coarse_mm {coarse_mm!r}"
        )
    coarse_shape = tuple(max(1, int(round(n * s / coarse_mm))) for n, s in zip(m.shape, sp))
    x = torch.from_numpy(m.astype(np.float32))[None, None]
    coarse = F.interpolate(x, size=coarse_shape, mode="area")[0, 0].numpy()
    coarse = ndimage.shift(coarse, rng.uniform(-max_shift, max_shift, 3), order=1, mode="nearest")
    draw = rng.random()
    if draw < morphology / 2:
        coarse = ndimage.grey_dilation(coarse, size=(3, 3, 3))
    elif draw < morphology:
        coarse = ndimage.grey_erosion(coarse, size=(3, 3, 3))
    coarse = ndimage.gaussian_filter(coarse, rng.uniform(*blur), mode="nearest")
    coarse = coarse / max(float(coarse.max()), 1e-6)  # a thin organ (pancreas) still has a core stage 1 calls
    k, t = rng.uniform(*sharpness), rng.uniform(*level)
    prob = 1.0 / (1.0 + np.exp(-k * (coarse - t)))
    prob = prob.astype(np.float32)
    up = F.interpolate(torch.from_numpy(prob)[None, None], size=m.shape, mode="trilinear", align_corners=False)
    return up[0, 0].numpy().clip(0.0, 1.0).astype(np.float32)


def _world_extent(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(3, 2) world extent (mm) of a mask's voxels (voxel edges included)."""
    idx = np.argwhere(mask)
    lo, hi = idx.min(0) - 0.5, idx.max(0) + 0.5
    corners = np.array(list(itertools.product(*zip(lo, hi))))
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    return np.stack([world.min(0), world.max(0)], axis=1)


def generate_refine_crops(
    scenario: str = "normal",
    seed: int = 0,
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    fine_spacing: float = 1.5,
    margin_mm: tuple[float, float] = (8.0, 30.0),
    max_shift_mm: float = 8.0,
    coarse_mm: float = 8.0,
    fov_weights: Mapping[str, float] | None = None,
    intensity_mode: str = "ct",
    locator_shape: int = 32,
    min_voxels: int = 1,
) -> list[RefineCrop]:
    """The crops of one trunk case: one per structure present in it.

    Args:
        scenario, seed: the trunk case (:func:`~monai_sadaan.data.trunk.generate_trunk_phantom`).
        structures: labelled structures, name -> label value (their order gives ``structure_index``).
        fine_spacing: the crops' voxel size (mm).
        margin_mm: range of the margin drawn per crop around the organ's box (the cascade adds 15 mm around a coarse
            mask that is itself off by about a coarse voxel).
        max_shift_mm: the box is shifted by up to this much per axis.
        coarse_mm: stage 1's voxel size for the context (:func:`simulate_stage1_context`).
        fov_weights: fields of view drawn (default :data:`REFINE_FOV_WEIGHTS`).
        intensity_mode: ``"ct"`` or ``"random"`` (domain randomisation).
        locator_shape: voxels per axis of the small rendering that finds the organs.
        min_voxels: voxels of the locator a structure needs to get a crop (1: any structure in view).

    Returns:
        The crops, in the order of ``structures``.
    """
    from .trunk import generate_trunk_phantom

    structures = check_structures(structures)
    low, high = (float(v) for v in margin_mm)
    if not 0 <= low <= high or not fine_spacing > 0 or not max_shift_mm >= 0:
        raise ValueError(
            f"expected 0 <= margin_mm[0] <= margin_mm[1], fine_spacing > 0 and max_shift_mm >= 0, got margin_mm "
            f"{margin_mm!r}, fine_spacing {fine_spacing!r}, max_shift_mm {max_shift_mm!r}"
        )
    case = dict(field_of_view="random", fov_weights=dict(fov_weights or REFINE_FOV_WEIGHTS),
                intensity_mode=intensity_mode, orientation="RAS", min_voxels=min_voxels)  # fmt: skip
    locator = generate_trunk_phantom(scenario, seed, structures, shape=int(locator_shape), **case)
    crops = []
    for index, (name, value) in enumerate(structures.items()):
        mask = locator.label == value
        if not locator.present.get(name, False) or not mask.any():
            continue
        rng = np.random.default_rng([int(seed), index, 0xCA5C])
        box = _world_extent(mask, locator.affine)
        box += rng.uniform(-max_shift_mm, max_shift_mm, (3, 1))
        box[:, 0] -= rng.uniform(low, high, 3)
        box[:, 1] += rng.uniform(low, high, 3)
        fine = generate_trunk_phantom(scenario, seed, structures, spacing=float(fine_spacing), crop=box, **case)
        label = (fine.label == value).astype(np.uint8)
        if not label.any():
            continue
        context = simulate_stage1_context(label, fine.spacing, rng, coarse_mm=coarse_mm)
        crops.append(RefineCrop(name, index, fine.image.astype(np.float32), label, context, fine.affine))
    return crops


def _write_crops(job: tuple) -> dict[str, Any]:
    """Generate and write the crops of one case (module-level for worker processes); its entries and split."""
    index, scenario, case_seed, root, structures, options = job
    crops = generate_refine_crops(scenario, case_seed, structures, **options)
    entries = []
    for crop in crops:
        name = f"refine_{index:04d}_{crop.structure}.nii.gz"
        image = np.rint(crop.image).clip(-32768, 32767).astype(np.int16)
        save_volume(image, crop.affine, Path(root) / "imagesTr" / name)
        save_volume(crop.context, crop.affine, Path(root) / "contextTr" / name)
        save_volume(crop.label, crop.affine, Path(root) / "labelsTr" / name)
        entries.append({
            "image": f"imagesTr/{name}", "context": f"contextTr/{name}", "label": f"labelsTr/{name}",
            "structure": crop.structure, "structure_index": crop.structure_index, "scenario": scenario,
            "seed": int(case_seed), "shape": list(crop.label.shape),
            "spacing": [round(float(s), 6) for s in np.linalg.norm(crop.affine[:3, :3], axis=0)],
        })  # fmt: skip
    return {"entries": entries}


def write_refine_dataset(
    output_dir: str | os.PathLike,
    num_cases: int,
    seed: int = 0,
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    scenarios: Sequence[str] = TRUNK_SCENARIOS,
    weights: Sequence[float] | None = None,
    splits: Sequence[float] = (0.8, 0.2, 0.0),
    fine_spacing: float = 1.5,
    margin_mm: Sequence[float] = (8.0, 30.0),
    coarse_mm: float = 8.0,
    domain_randomization: float = 0.0,
    locator_shape: int = 32,
    datalist_name: str = "dataset.json",
    num_workers: int = 0,
    progress: bool = False,
) -> Path:
    """Generate the crops of ``num_cases`` trunk cases and write them with a decathlon-style datalist (JSON last).

    Case ``i`` is the trunk case ``(scenario_i, case_seed(seed, i))`` with scenarios by ``weights`` and splits by
    case, as :func:`~monai_sadaan.data.trunk.dataset.write_trunk_dataset` plans them; a deterministic
    ``domain_randomization`` fraction of the case seeds is rendered with random tissue intensities.

    Returns:
        Path of the datalist JSON.
    """
    from .trunk import TRUNK_GENERATOR_VERSION
    from .trunk.dataset import _intensity_mode, check_domain_randomization

    scenarios = check_scenarios(scenarios, TRUNK_SCENARIOS)
    structures = check_structures(structures)
    fraction = check_domain_randomization(domain_randomization)
    weights = _check_dataset_args(num_cases, scenarios, weights, splits, None, fine_spacing, None, "int16", 1,
                                  num_workers)  # fmt: skip
    plan = _plan_cases(num_cases, seed, scenarios, weights, splits)
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    options = {"fine_spacing": float(fine_spacing), "margin_mm": tuple(float(m) for m in margin_mm),
               "coarse_mm": float(coarse_mm), "locator_shape": int(locator_shape)}  # fmt: skip
    jobs = []
    for index, (scenario, _) in enumerate(plan):
        case_seed = _case_seed(seed, index)
        mode = _intensity_mode(case_seed, fraction)
        jobs.append((index, scenario, case_seed, str(root), dict(structures), {**options, "intensity_mode": mode}))
    lists: dict[str, list[dict]] = {split: [] for split in SPLITS}
    with map_jobs(_write_crops, jobs, num_workers, progress, desc="refine crops", unit="case") as results:
        for (_, split), result in zip(plan, results):
            lists[split].extend(result["entries"])
    datalist = {
        "name": "SADAAn cascade stage-2 crops",
        "description": "fine crops around present organs of trunk phantoms, with a simulated stage-1 context "
        "(monai_sadaan.data.refine_crops)",
        "structures": dict(structures),
        "generator": {"name": "refine_crops", "trunk_version": TRUNK_GENERATOR_VERSION, "seed": int(seed),
                      "num_cases": int(num_cases), "scenarios": list(scenarios), "weights": list(weights),
                      "splits": [float(s) for s in splits], "domain_randomization": fraction, **options},
        **lists,
    }  # fmt: skip
    path = root / datalist_name
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(datalist, f, indent=2, default=list)
        f.write("\n")
    return path


def ensure_refine_datalist(
    data_dir: str | os.PathLike,
    num_cases: int = 200,
    seed: int = 0,
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    datalist_name: str = "dataset.json",
    **kwargs: Any,
) -> str:
    """Path of a stage-2 crop datalist in ``data_dir``, written by :func:`write_refine_dataset` when missing or made
    with other arguments (or another trunk generator version). ``kwargs``: the rest of
    :func:`write_refine_dataset`'s arguments (``num_workers`` and ``progress`` do not change the data and are not
    stamped).

    Returns:
        The datalist JSON path, as a string (MONAI configs pass it to ``load_datalist``).
    """
    from .trunk import TRUNK_GENERATOR_VERSION

    from .default_dataset import reuse_or_generate

    root = Path(data_dir)
    stamped = {k: v for k, v in kwargs.items() if k not in ("num_workers", "progress")}
    wanted = json.loads(json.dumps({
        "num_cases": int(num_cases), "seed": int(seed), "structures": {str(k): int(v) for k, v in structures.items()},
        "trunk_version": TRUNK_GENERATOR_VERSION, **stamped,
    }, default=list))  # fmt: skip
    return reuse_or_generate(
        root, root / datalist_name, wanted,
        lambda: write_refine_dataset(root, num_cases, seed, structures, datalist_name=datalist_name, **kwargs),
    )
