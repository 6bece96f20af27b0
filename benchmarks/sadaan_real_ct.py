"""SADAAn on real CT: presence calls and agreement with TotalSegmentator on one real abdominal CT (issue 24).

    flock /tmp/heavy.lock .venv/bin/python benchmarks/sadaan_real_ct.py [--model NAME=CKPT ...] [--unet NAME=CKPT ...]
        [--model_args NAME="--key value ..." ...] [--bundle_root DIR] [--code_root DIR] [--data_dir DIR]
        [--work_dir DIR] [--output_json OUT.json]
        [--figure_dir DIR] [--thin_slices 6] [--bed_dilation 2] [--seed 0]

The real CT is TotalSegmentator's public example (``../shared/data/real_ct/totalsegmentator_example``, read its
SOURCE.md): ``example_ct`` (122 x 101 x 112, 3 mm, abdomen and pelvis) and ``example_ct_sm`` (its slices 82..111,
upper abdomen) with TotalSegmentator v2 labels for the latter. It is read for validation only. Cases derived from it
into ``--work_dir`` (``images/<case>.nii.gz``, ``truth/<case>_truth.nii.gz`` in SADAAn's label values, ``cases.json``):

* ``whole``: example_ct; all five present; Dice only on slices 82..111, the only slices with labels.
* ``upper_abdomen``: example_ct_sm with its header as it is; all five present; Dice on every slice.
* ``pelvis_only``: slices 0..39 of example_ct; none of the five (SOURCE.md); every painted voxel is a false positive.
* ``thin_slab_no_kidneys``: the top ``--thin_slices`` slices of example_ct_sm (no kidney voxel there, checked);
  presence truth by the bundle's own rule: a structure is present when its label map, resized to the network grid
  (nearest-exact) as the training transforms do, keeps at least ``min_voxels`` voxels (``configs/train.json``).
* ``nephrectomy_left``, ``nephrectomy_right``, ``nephrectomy_bilateral``, ``splenectomy``: upper_abdomen with the
  organ's bed (its label dilated by ``--bed_dilation`` voxels, minus every other labelled voxel of
  TotalSegmentator's 117 classes) filled with smooth fat-like tissue: -100 HU plus Gaussian-smoothed noise scaled to
  the image's own noise (estimated in fat and muscle), blended into the surroundings at the bed's rim; truth: that
  organ absent, the others present.

Slabs get the source affine shifted by their first slice, so every voxel centre keeps its world position.

Each ``--model NAME=CKPT`` (default ``shipped=`` the bundle's ``models/model.pt``) runs the bundle's own inference
command in a subprocess, as a user would (``python -m monai.bundle run --config_file configs/inference.json
--bundle_root B --dataset_dir images --output_dir O --ckpt_path CKPT``); ``CKPT`` may be ``git:REV`` (the bundle's
``models/model.pt`` at commit REV, written into the work folder: the equivalent of ``git show
3eeda09:bundles/sadaan_abdominal_ct_segmentation/models/model.pt > /tmp/sadaan_0.10.0.pt``). ``--bundle_root`` runs
another bundle folder (e.g. ``git archive REV bundles/sadaan_abdominal_ct_segmentation | tar -x -C DIR``) and
``--code_root`` another checkout's ``monai_sadaan`` (``PYTHONPATH``). ``--model_args NAME="--key value ..."`` adds
bundle arguments to that model's command, e.g. ``--model tt=<ckpt> --model_args tt="--test_time_norm true"`` or
``--model_args NAME="--presence_fusion false"`` for weights without the fusion.

Each ``--unet NAME=CKPT`` is a plain MONAI UNet (6 classes) from ``benchmarks/train_plain_unet.py``, run in this
process on the same cases with the bundle's own preprocessing (``preprocessing`` of ``configs/inference.json``:
orientation to RAS, CT window, whole-volume resize to the grid) and the inverse back (its softmax resized to the
input grid, trilinear, then argmax). Its call for a structure: at least ``min_voxels`` voxels of that label on the
network grid; its probability column is the highest softmax value of the class on the grid.

Per model it prints a table (case, structure, truth, call, probability, Dice against TotalSegmentator for present
structures, false-positive mL for absent ones) and a summary; ``--output_json`` keeps everything and ``--figure_dir``
(default ``docs/figures/sadaan_real_ct``) gets one overview PNG per case: axial and coronal slices with the truth's
and each model's outlines. Dice here is agreement with TotalSegmentator, itself a model, not manual truth.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_REL = Path("bundles") / "sadaan_abdominal_ct_segmentation"
BUNDLE = ROOT / BUNDLE_REL
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real_ct" / "totalsegmentator_example"
DEFAULT_FIGURES = ROOT / "docs" / "figures" / "sadaan_real_ct"

STRUCTURES = {"left_kidney": 1, "right_kidney": 2, "liver": 3, "spleen": 4, "pancreas": 5}
TOTALSEG_TO_SADAAN = {3: 1, 2: 2, 5: 3, 1: 4, 7: 5}  # kidney_left, kidney_right, liver, spleen, pancreas
SM_START, SM_STOP = 82, 112  # example_ct_sm = example_ct[..., 82:112]
PELVIS_STOP = 40  # example_ct[..., 0:40] holds none of the five
MUSCLE_TOTALSEG = (86, 87, 88, 89)  # autochthon and iliopsoas, left and right
RESECTIONS = {
    "nephrectomy_left": ("left_kidney",),
    "nephrectomy_right": ("right_kidney",),
    "nephrectomy_bilateral": ("left_kidney", "right_kidney"),
    "splenectomy": ("spleen",),
}
FAT_HU = -100.0
UPPER_CASE = "upper_abdomen"
GRID_CEILING = "grid_ceiling"


# ------------------------------------------------------------------------------------------------- the cases
class Case(NamedTuple):
    """One derived CT with its truth.

    Attributes:
        name: case name (file stem).
        image: HU volume (int16, the source's array order).
        affine: voxel-to-world affine of ``image``.
        truth_labels: SADAAn label map on the same grid (0 where unlabelled).
        present: presence truth per structure.
        dice_slices: ``(start, stop)`` of the last axis where ``truth_labels`` is known; None: everywhere.
        note: how the case was made.
    """

    name: str
    image: np.ndarray
    affine: np.ndarray
    truth_labels: np.ndarray
    present: dict[str, bool]
    dice_slices: tuple[int, int] | None = None
    note: str = ""


def write_result_json(path: Path | None, result: dict[str, Any]) -> None:
    """Write a benchmark's result dictionary as indented JSON (nothing when ``path`` is None)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))


def slab_affine(affine: np.ndarray, start: int, axis: int = 2) -> np.ndarray:
    """Affine of the slab that starts at index ``start`` of ``axis``: its voxel ``v`` is the source's voxel
    ``v + start * e_axis``, so both map to the same world point."""
    shift = np.eye(4)
    shift[axis, 3] = float(start)
    return np.asarray(affine, dtype=np.float64) @ shift


def totalseg_to_sadaan(seg: np.ndarray) -> np.ndarray:
    """TotalSegmentator v2 class ids to SADAAn label values (uint8; every other class becomes 0)."""
    lut = np.zeros(max(int(seg.max()), max(TOTALSEG_TO_SADAAN)) + 1, dtype=np.uint8)
    for ts_id, value in TOTALSEG_TO_SADAAN.items():
        lut[ts_id] = value
    return lut[seg.astype(np.int64)]


def ras_orientations(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nibabel orientation transforms ``(to RAS, back to the array's own order)`` of an array with ``affine``."""
    src, ras = nib.io_orientation(affine), nib.orientations.axcodes2ornt("RAS")
    return nib.orientations.ornt_transform(src, ras), nib.orientations.ornt_transform(ras, src)


def network_grid_presence(
    labels: np.ndarray, affine: np.ndarray, spatial_size: tuple[int, int, int], min_voxels: int
) -> tuple[dict[str, bool], dict[str, int]]:
    """The bundle's presence rule on a label map: orientated to RAS, resized to ``spatial_size`` with
    nearest-exact (what ``FitToSpatialSized`` does to the label in ``train.json``: MONAI's ``Resize``, i.e.
    ``F.interpolate(mode="nearest-exact")``), present when at least ``min_voxels`` voxels stay.

    Returns ``(present, voxels on the grid)`` per structure.
    """
    import torch
    import torch.nn.functional as F

    to_ras, _ = ras_orientations(affine)
    ras = np.ascontiguousarray(nib.orientations.apply_orientation(labels, to_ras), dtype=np.float32)
    grid = F.interpolate(torch.from_numpy(ras)[None, None], size=tuple(spatial_size), mode="nearest-exact")
    grid = grid[0, 0].numpy().round().astype(np.int64)
    counts = {name: int(np.count_nonzero(grid == value)) for name, value in STRUCTURES.items()}
    return {name: c >= min_voxels for name, c in counts.items()}, counts


def grid_ceiling_labels(case: Case, spatial_size: tuple[int, int, int]) -> np.ndarray:
    """The reference labels taken through the network grid and back: what a stage 1 that is right on every grid
    voxel paints. Each structure's mask (RAS) is resized trilinearly to ``spatial_size`` and back to the case's grid
    (``align_corners=False``, the resize of ``CTToNetworkGrid`` and its inverse); a voxel gets the structure with the
    highest value when that value is above 0.5. Its Dice is the ceiling the grid puts on stage 1 alone.

    Returns:
        A label map on the case's grid (uint8, the case's array order).
    """
    import torch
    import torch.nn.functional as F

    to_ras, back_to_case = ras_orientations(case.affine)
    ras = nib.orientations.apply_orientation(case.truth_labels, to_ras)
    values = list(STRUCTURES.values())
    onehot = torch.from_numpy(np.stack([ras == v for v in values]).astype(np.float32))[None]  # [1, S, X, Y, Z]
    small = F.interpolate(onehot, size=tuple(spatial_size), mode="trilinear", align_corners=False)
    back = F.interpolate(small, size=ras.shape, mode="trilinear", align_corners=False)[0]
    best, index = back.max(dim=0)
    labels = np.where(best.numpy() > 0.5, np.asarray(values, dtype=np.uint8)[index.numpy()], 0).astype(np.uint8)
    return nib.orientations.apply_orientation(labels, back_to_case).astype(np.uint8)


def estimate_noise_sigma(image: np.ndarray, totalseg: np.ndarray) -> float:
    """The image's noise (HU): median local standard deviation (3x3x3) inside eroded fat (-150..-50 HU, unlabelled)
    and eroded muscle (autochthon, iliopsoas), where tissue is nearly uniform and what varies is mostly noise."""
    from scipy import ndimage

    img = image.astype(np.float64)
    fat = (img > -150) & (img < -50) & (totalseg == 0)
    muscle = np.isin(totalseg, MUSCLE_TOTALSEG)
    mask = ndimage.binary_erosion(fat, iterations=1) | ndimage.binary_erosion(muscle, iterations=1)
    if np.count_nonzero(mask) < 100:
        raise ValueError(f"expected at least 100 voxels of fat or muscle to estimate the noise, got {mask.sum()}")
    mean = ndimage.uniform_filter(img, 3)
    var = np.maximum(ndimage.uniform_filter(img * img, 3) - mean * mean, 0.0) * 27.0 / 26.0
    return float(np.median(np.sqrt(var[mask])))


def organ_bed(totalseg: np.ndarray, organ_ids: tuple[int, ...], dilation: int) -> np.ndarray:
    """The organs' label dilated by ``dilation`` voxels (6-connected steps), without any voxel another
    TotalSegmentator class claims."""
    from scipy import ndimage

    organ = np.isin(totalseg, organ_ids)
    bed = ndimage.binary_dilation(organ, iterations=dilation) if dilation > 0 else organ.copy()
    others = (totalseg != 0) & ~organ
    return bed & ~others


def fill_bed(
    image: np.ndarray, bed: np.ndarray, organ: np.ndarray, sigma_hu: float, rng: np.random.Generator
) -> np.ndarray:
    """``image`` with ``bed`` filled by fat-like tissue: ``FAT_HU`` plus white noise smoothed (Gaussian, 1 voxel)
    and scaled to ``sigma_hu``; the organ's own voxels take the fill wholly, the rest of the bed a weight that
    falls off towards its rim (a Gaussian-smoothed bed), so the fill meets the surroundings without a step."""
    from scipy import ndimage

    noise = ndimage.gaussian_filter(rng.standard_normal(image.shape), 1.0)
    noise *= sigma_hu / max(float(noise.std()), 1e-6)
    fill = FAT_HU + noise
    weight = np.clip(ndimage.gaussian_filter(bed.astype(np.float64), 0.7) * 2.0, 0.0, 1.0)
    weight[organ] = 1.0
    weight[~bed] = 0.0
    out = image.astype(np.float64) * (1.0 - weight) + fill * weight
    return np.rint(out).astype(np.int16)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(str(path))
    return np.asarray(img.dataobj), np.asarray(img.affine, dtype=np.float64)


def load_sources(data_dir: Path) -> dict[str, Any]:
    """The three source files; checks that example_ct_sm is example_ct's slices 82..111."""
    names = ("example_ct.nii.gz", "example_ct_sm.nii.gz", "example_seg.nii.gz")
    missing = [n for n in names if not (data_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"expected {', '.join(names)} in {data_dir}; missing: {', '.join(missing)}")
    ct, ct_affine = _read(data_dir / names[0])
    sm, sm_affine = _read(data_dir / names[1])
    seg, _ = _read(data_dir / names[2])
    if sm.shape != seg.shape or not np.array_equal(ct[..., SM_START:SM_STOP], sm):
        raise ValueError(
            f"expected example_ct_sm (got {sm.shape}) to equal example_ct[..., {SM_START}:{SM_STOP}] and the "
            f"labels (got {seg.shape}) to share its grid"
        )
    return {"ct": ct, "ct_affine": ct_affine, "sm": sm, "sm_affine": sm_affine, "seg": seg.astype(np.int64)}


def thin_slab_range(seg: np.ndarray, slices: int) -> tuple[int, int]:
    """The top ``slices`` slices of the labelled part; raises when a kidney voxel lies there."""
    if not 1 <= slices <= seg.shape[2]:
        raise ValueError(f"expected 1..{seg.shape[2]} thin-slab slices, got {slices}")
    start = seg.shape[2] - slices
    kidneys = int(np.isin(seg[..., start:], (2, 3)).sum())
    if kidneys:
        raise ValueError(f"expected no kidney voxel in slices {start}..{seg.shape[2] - 1}, got {kidneys}")
    return start, seg.shape[2]


def derive_cases(
    sources: dict[str, Any],
    spatial_size: tuple[int, int, int],
    min_voxels: int,
    thin_slices: int = 6,
    dilation: int = 2,
    seed: int = 0,
) -> list[Case]:
    """The benchmark's cases (see the module docstring), in a fixed order."""
    ct, ct_aff, sm, sm_aff, seg = (sources[k] for k in ("ct", "ct_affine", "sm", "sm_affine", "seg"))
    truth_sm = totalseg_to_sadaan(seg)
    everything = {name: True for name in STRUCTURES}
    whole_truth = np.zeros(ct.shape, dtype=np.uint8)
    whole_truth[..., SM_START:SM_STOP] = truth_sm
    cases = [
        Case("whole", ct.astype(np.int16), ct_aff, whole_truth, dict(everything), (SM_START, SM_STOP),
             f"example_ct; labels (and Dice) on slices {SM_START}..{SM_STOP - 1} only"),
        Case(UPPER_CASE, sm.astype(np.int16), sm_aff, truth_sm, dict(everything), None,
             "example_ct_sm, header as it is"),
        Case("pelvis_only", ct[..., :PELVIS_STOP].astype(np.int16), slab_affine(ct_aff, 0),
             np.zeros(ct[..., :PELVIS_STOP].shape, np.uint8), {name: False for name in STRUCTURES}, None,
             f"example_ct slices 0..{PELVIS_STOP - 1}: none of the five"),
    ]  # fmt: skip
    z0, z1 = thin_slab_range(seg, thin_slices)
    thin_aff = slab_affine(sm_aff, z0)
    thin_truth = truth_sm[..., z0:z1]
    present, _ = network_grid_presence(thin_truth, thin_aff, spatial_size, min_voxels)
    cases.append(Case("thin_slab_no_kidneys", sm[..., z0:z1].astype(np.int16), thin_aff, thin_truth, present, None,
                      f"example_ct_sm slices {z0}..{z1 - 1}; presence by min_voxels={min_voxels} on the grid"))
    sigma = estimate_noise_sigma(sm, seg)
    rng = np.random.default_rng(seed)
    for name, organs in RESECTIONS.items():
        values = [STRUCTURES[o] for o in organs]
        ts_ids = tuple(k for k, v in TOTALSEG_TO_SADAAN.items() if v in values)
        bed = organ_bed(seg, ts_ids, dilation)
        image = fill_bed(sm, bed, np.isin(seg, ts_ids), sigma, rng)
        truth = truth_sm.copy()
        truth[bed] = 0
        present = {s: s not in organs for s in STRUCTURES}
        cases.append(Case(name, image, sm_aff, truth, present, None,
                          f"upper_abdomen, {' and '.join(organs)} bed (dilated {dilation}) filled with fat "
                          f"({FAT_HU:.0f} HU, noise {sigma:.1f} HU)"))  # fmt: skip
    return cases


def _nifti(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return img


def write_cases(cases: list[Case], work: Path) -> tuple[Path, Path]:
    """``work/images/<case>.nii.gz``, ``work/truth/<case>_truth.nii.gz`` and ``work/cases.json``; returns the
    image and truth folders."""
    images, truth = work / "images", work / "truth"
    images.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    index = []
    for case in cases:
        nib.save(_nifti(case.image, case.affine), str(images / f"{case.name}.nii.gz"))
        nib.save(_nifti(case.truth_labels, case.affine), str(truth / f"{case.name}_truth.nii.gz"))
        index.append({"case": case.name, "shape": list(case.image.shape), "present": case.present,
                      "dice_slices": case.dice_slices, "note": case.note})  # fmt: skip
    (work / "cases.json").write_text(json.dumps(index, indent=2))
    return images, truth


# ------------------------------------------------------------------------------------------------- scoring
class Row(NamedTuple):
    """One structure of one case for one model."""

    model: str
    case: str
    structure: str
    truth: bool
    call: bool
    probability: float | None
    dice: float | None  # present structures only
    fp_ml: float | None  # absent structures only
    painted_voxels: int


def dice(pred: np.ndarray, true: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty."""
    denom = int(pred.sum()) + int(true.sum())
    return 1.0 if denom == 0 else 2.0 * int(np.logical_and(pred, true).sum()) / denom


def voxel_ml(affine: np.ndarray) -> float:
    """Volume of one voxel in millilitres."""
    return abs(float(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3]))) / 1000.0


def score_case(
    model: str, case: Case, pred_labels: np.ndarray, calls: dict[str, bool], probs: dict[str, float | None]
) -> list[Row]:
    """Rows of one case: Dice on the slices with labels for present structures, painted volume for absent ones."""
    if pred_labels.shape != case.truth_labels.shape:
        raise ValueError(f"expected a label map of shape {case.truth_labels.shape} for {case.name}, "
                         f"got {pred_labels.shape}")  # fmt: skip
    z0, z1 = case.dice_slices or (0, pred_labels.shape[2])
    ml = voxel_ml(case.affine)
    rows = []
    for name, value in STRUCTURES.items():
        painted = pred_labels == value
        n = int(painted.sum())
        truth = case.present[name]
        d = dice(painted[..., z0:z1], case.truth_labels[..., z0:z1] == value) if truth else None
        rows.append(Row(model, case.name, name, truth, bool(calls[name]), probs.get(name), d,
                        None if truth else n * ml, n))  # fmt: skip
    return rows


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarise(rows: list[Row]) -> dict[str, Any]:
    """Calls right / total, mean Dice over present structures (upper_abdomen, all cases) and the absent
    structures with any painted voxel."""
    return {
        "calls_right": sum(r.call == r.truth for r in rows),
        "calls_total": len(rows),
        "mean_dice_upper_abdomen": _mean([r.dice for r in rows if r.dice is not None and r.case == UPPER_CASE]),
        "mean_dice_all": _mean([r.dice for r in rows if r.dice is not None]),
        "absent_painted": [
            {"case": r.case, "structure": r.structure, "ml": r.fp_ml} for r in rows if not r.truth and r.painted_voxels
        ],
        "absent_total": sum(not r.truth for r in rows),
    }


def _yes(flag: bool) -> str:
    return "present" if flag else "absent"


def format_table(rows: list[Row]) -> str:
    """Markdown table of one model's rows."""
    out = ["| case | structure | truth | call | probability | Dice vs TotalSegmentator | false-positive mL |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        call = _yes(r.call) + ("" if r.call == r.truth else " **wrong**")
        p = "-" if r.probability is None else f"{r.probability:.3f}"
        d = "-" if r.dice is None else f"{r.dice:.3f}"
        fp = "-" if r.fp_ml is None else f"{r.fp_ml:.1f}"
        out.append(f"| {r.case} | {r.structure} | {_yes(r.truth)} | {call} | {p} | {d} | {fp} |")
    return "\n".join(out)


def format_summary(model: str, s: dict[str, Any]) -> str:
    """Summary lines of one model."""
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    painted = ", ".join(f"{a['case']}/{a['structure']} {a['ml']:.2f} mL" for a in s["absent_painted"]) or "none"
    return (
        f"{model}: calls right {s['calls_right']}/{s['calls_total']}; mean Dice over present structures: "
        f"upper_abdomen {fmt(s['mean_dice_upper_abdomen'])}, all cases {fmt(s['mean_dice_all'])}; "
        f"absent structures with painted voxels: {len(s['absent_painted'])}/{s['absent_total']} ({painted})"
    )


# ------------------------------------------------------------------------------------------------- SADAAn bundle
def parse_named(spec: str, what: str) -> tuple[str, str]:
    """``NAME=VALUE`` -> ``(NAME, VALUE)``."""
    name, sep, value = spec.partition("=")
    if not sep or not name or not value or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise argparse.ArgumentTypeError(
            f"expected {what} as NAME=VALUE (NAME of letters, digits, . _ -), got {spec!r}"
        )
    return name, value


def resolve_checkpoint(value: str, name: str, work: Path, repo: Path = ROOT) -> Path:
    """A checkpoint path; ``git:REV`` (or ``git:REV:PATH``) writes the file from git history into ``work``."""
    if not value.startswith("git:"):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"expected a checkpoint file for {name}, got a missing path: {path}")
        return path.resolve()
    rev, _, rel = value[4:].partition(":")
    rel = rel or str(BUNDLE_REL / "models" / "model.pt")
    out = work / "checkpoints" / f"{name}.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        proc = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=repo, stdout=f, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        out.unlink(missing_ok=True)
        raise FileNotFoundError(f"expected {rel} at git revision {rev}: {proc.stderr.decode().strip()}")
    return out


def bundle_command(
    bundle_root: Path, images: Path, out: Path, ckpt: Path, extra: Sequence[str] = ()
) -> list[str]:
    """The bundle's inference command (docs/README.md, Commands) for a folder of images, then ``extra`` arguments."""
    config = str(bundle_root / "configs" / "inference.json")
    return [sys.executable, "-m", "monai.bundle", "run", "--config_file", config, "--bundle_root", str(bundle_root),
            "--dataset_dir", str(images), "--output_dir", str(out), "--ckpt_path", str(ckpt), *extra]  # fmt: skip


def run_bundle(cmd: list[str], cwd: Path, code_root: Path | None) -> float:
    """Run the bundle command; its wall seconds. Raises SystemExit with the output's tail when it fails."""
    env = dict(os.environ)
    if code_root is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code_root), env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout.decode()[-3000:]}")
    return time.perf_counter() - start


def read_bundle_case(out: Path, case: Case | str) -> tuple[np.ndarray, dict[str, bool], dict[str, float]]:
    """``(label map, calls, probabilities)`` the bundle wrote for ``case``."""
    case = case if isinstance(case, str) else case.name
    report = json.loads((out / case / f"{case}_presence.json").read_text())
    calls = {r["structure"]: bool(r["present"]) for r in report["structures"]}
    probs = {r["structure"]: float(r["presence_probability"]) for r in report["structures"]}
    if set(calls) != set(STRUCTURES):
        raise ValueError(f"expected the structures {list(STRUCTURES)} in {case}'s report, got {list(calls)}")
    labels = np.asarray(nib.load(str(out / case / f"{case}_labels.nii.gz")).dataobj)
    return labels, calls, probs


# ------------------------------------------------------------------------------------------------- UNet baseline
def bundle_settings(bundle_root: Path) -> dict[str, Any]:
    """``spatial_size``, ``presence_threshold`` (inference.json) and ``min_voxels`` (train.json) of a bundle."""
    inference = json.loads((bundle_root / "configs" / "inference.json").read_text())
    train = json.loads((bundle_root / "configs" / "train.json").read_text())
    return {
        "spatial_size": tuple(int(s) for s in inference["spatial_size"]),
        "presence_threshold": float(inference["presence_threshold"]),
        "min_voxels": int(train["min_voxels"]),
    }


def bundle_preprocessing(bundle_root: Path) -> Any:
    """The ``preprocessing`` Compose of the bundle's inference.json, parsed as the bundle's CLI parses it."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle_root)
    parser.get_parsed_content("imports")
    return parser.get_parsed_content("preprocessing")


def load_unet(path: Path) -> Any:
    """A ``monai.networks.nets.UNet`` from a checkpoint of ``benchmarks/train_plain_unet.py`` (weights_only)."""
    import torch
    from monai.networks.nets import UNet

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "model" not in state or "network" not in state:
        found = list(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"expected a train_plain_unet.py checkpoint with 'model' and 'network' keys, got {found}")
    net = UNet(**state["network"])
    net.load_state_dict(state["model"])
    return net.eval()


def unet_case(
    net: Any, preprocessing: Any, images: Path, min_voxels: int, case: Case | str
) -> tuple[np.ndarray, dict[str, bool], dict[str, float]]:
    """``(label map on the input grid, calls, highest class probability)`` of the UNet on ``images/<case>.nii.gz``."""
    import torch
    from monai_sadaan.transforms import find_network_grid_record, input_grid_probabilities

    name = case if isinstance(case, str) else case.name
    image = preprocessing({"image": str(images / f"{name}.nii.gz")})["image"]
    with torch.no_grad():
        probs = torch.softmax(net(image.as_tensor()[None].float()), dim=1)[0]  # [6, *grid]
    grid_labels = probs.argmax(0)
    calls = {n: int((grid_labels == v).sum()) >= min_voxels for n, v in STRUCTURES.items()}
    peak = {n: float(probs[v].max()) for n, v in STRUCTURES.items()}
    full = input_grid_probabilities(probs, find_network_grid_record(image))  # [6, X, Y, Z]
    return np.asarray(full.argmax(0), dtype=np.uint8), calls, peak


# ------------------------------------------------------------------------------------------------- figures
COLOURS = {"left_kidney": "#e6194b", "right_kidney": "#3cb44b", "liver": "#4363d8", "spleen": "#f58231",
           "pancreas": "#ffe119"}  # fmt: skip


def figure_slices(case: Case) -> list[tuple[str, int]]:
    """Three axial slices (quarter points of the labelled extent, else of the volume) and one coronal slice."""
    lab = case.truth_labels > 0
    zs = np.flatnonzero(lab.any(axis=(0, 1)))
    z_lo, z_hi = (zs[0], zs[-1]) if len(zs) else (0, lab.shape[2] - 1)
    axial = sorted({int(round(z_lo + f * (z_hi - z_lo))) for f in (0.2, 0.5, 0.8)})
    ys = np.flatnonzero(lab.any(axis=(0, 2)))
    y = int(np.median(ys)) if len(ys) else lab.shape[1] // 2
    return [("axial", z) for z in axial] + [("coronal", y)]


def _plane(volume: np.ndarray, view: str, index: int) -> np.ndarray:
    """A slice shown radiologically: patient's right on the left, anterior / superior at the top."""
    s = volume[:, :, index] if view == "axial" else volume[:, index, :]
    return s.T[:, ::-1]


def overview_figure(case: Case, predictions: dict[str, np.ndarray], path: Path) -> Path:
    """One PNG: a row per source (truth, each model), a column per slice; outlines coloured by structure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    canonical = nib.as_closest_canonical(_nifti(case.image, case.affine))
    ornt = nib.orientations.ornt_transform(nib.io_orientation(case.affine), nib.io_orientation(canonical.affine))
    ras = lambda a: nib.orientations.apply_orientation(a, ornt)  # noqa: E731
    image = ras(case.image)
    sources = {"truth (TotalSegmentator)": ras(case.truth_labels), **{k: ras(v) for k, v in predictions.items()}}
    slices = figure_slices(Case(case.name, image, canonical.affine, sources["truth (TotalSegmentator)"], case.present))
    zooms = canonical.header.get_zooms()[:3]
    fig, axes = plt.subplots(len(sources), len(slices), figsize=(2.1 * len(slices), 2.0 * len(sources) + 0.4),
                             squeeze=False)  # fmt: skip
    for row, (source, labels) in enumerate(sources.items()):
        for col, (view, index) in enumerate(slices):
            ax = axes[row, col]
            aspect = zooms[1] / zooms[0] if view == "axial" else zooms[2] / zooms[0]
            ax.imshow(np.clip(_plane(image, view, index), -175, 250), cmap="gray", origin="lower", aspect=aspect)
            plane = _plane(labels, view, index)
            for name, value in STRUCTURES.items():
                if (plane == value).any():
                    ax.contour(plane == value, levels=[0.5], colors=[COLOURS[name]], linewidths=0.9)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{view} {index}", fontsize=7)
            if col == 0:
                ax.set_ylabel(source, fontsize=7)
    handles = [matplotlib.lines.Line2D([], [], color=c, label=n) for n, c in COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=6, frameon=False)
    fig.suptitle(f"{case.name}: " + ", ".join(f"{n} {_yes(p)}" for n, p in case.present.items()), fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=None, metavar="NAME=CKPT",
                   help="SADAAn weights to judge (repeatable); CKPT may be git:REV; "
                   "default shipped=<bundle_root>/models/model.pt")
    p.add_argument("--model_args", action="append", default=[], metavar='NAME="--key value ..."',
                   help="bundle arguments added to that --model's inference command (repeatable)")
    p.add_argument("--unet", action="append", default=[], metavar="NAME=CKPT",
                   help="plain UNet checkpoint of benchmarks/train_plain_unet.py (repeatable)")
    p.add_argument("--bundle_root", type=Path, default=BUNDLE, help="bundle folder whose configs run the models")
    p.add_argument("--code_root", type=Path, default=None,
                   help="use monai_sadaan of this checkout (PYTHONPATH of the bundle runs, first on sys.path here)")
    p.add_argument("--data_dir", type=Path, default=DEFAULT_DATA, help="folder of the TotalSegmentator example")
    p.add_argument("--work_dir", type=Path, default=None, help="derived cases and outputs (default: a temp dir)")
    p.add_argument("--output_json", type=Path, default=None, help="write cases, rows and summaries here")
    p.add_argument("--figure_dir", type=Path, default=DEFAULT_FIGURES, help="overview PNGs, one per case")
    p.add_argument("--no_figures", action="store_true", help="skip the PNGs")
    p.add_argument("--thin_slices", type=int, default=6, help="slices of the thin slab (top of the labelled part)")
    p.add_argument("--bed_dilation", type=int, default=2, help="voxels an organ's bed reaches beyond its label")
    p.add_argument("--seed", type=int, default=0, help="seed of the fat fill's noise")
    args = p.parse_args(argv)
    try:
        default = [f"shipped={args.bundle_root / 'models' / 'model.pt'}"]
        args.models = [parse_named(s, "--model") for s in (args.model or default)]
        args.unets = [parse_named(s, "--unet") for s in args.unet]
        extra = [parse_named(s, "--model_args") for s in args.model_args]
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    names = [n for n, _ in args.models + args.unets]
    if len(set(names)) != len(names):
        p.error(f"expected distinct model names, got {names}")
    unknown = sorted({n for n, _ in extra} - {n for n, _ in args.models})
    if unknown or len({n for n, _ in extra}) != len(extra):
        p.error(f"expected --model_args once per name given by --model {[n for n, _ in args.models]}, "
                f"got {[n for n, _ in extra]}")
    args.model_args = {n: shlex.split(v) for n, v in extra}
    if args.thin_slices < 1 or args.bed_dilation < 0:
        p.error("expected --thin_slices >= 1 and --bed_dilation >= 0")
    return args


def score_outputs(
    model: str, cases: list[Case], predict: Any, predictions: dict[str, dict[str, np.ndarray]]
) -> list[Row]:
    """Rows of ``model`` over ``cases``; ``predict(case)`` gives ``(label map, calls, probabilities)``, and each label
    map is also kept in ``predictions[case][model]`` for the figures."""
    rows: list[Row] = []
    for case in cases:
        labels, calls, probs = predict(case)
        predictions[case.name][model] = labels
        rows += score_case(model, case, labels, calls, probs)
    return rows


def use_code_root(code_root: Path) -> None:
    """Import ``monai_sadaan`` from ``code_root`` in this process too (the UNet path uses its transforms)."""
    if not (code_root / "monai_sadaan" / "__init__.py").is_file():
        raise FileNotFoundError(f"expected a checkout with monai_sadaan/__init__.py in --code_root, got {code_root}")
    loaded = sys.modules.get("monai_sadaan")
    if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(str(code_root)):
        raise RuntimeError(f"monai_sadaan is already imported from {loaded.__file__}, not from {code_root}")
    sys.path.insert(0, str(code_root))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.code_root is not None:
        use_code_root(args.code_root.resolve())
    work = (args.work_dir or Path(tempfile.mkdtemp(prefix="sadaan_real_ct_"))).resolve()
    bundle_root = args.bundle_root.resolve()
    settings = bundle_settings(bundle_root)
    load_start = os.getloadavg()
    print(f"# {os.uname().nodename}, {os.cpu_count()} CPUs; load average at start {load_start}; work {work}")
    cases = derive_cases(load_sources(args.data_dir), settings["spatial_size"], settings["min_voxels"],
                         args.thin_slices, args.bed_dilation, args.seed)  # fmt: skip
    images, _ = write_cases(cases, work)
    for case in cases:
        print(f"# {case.name}: {case.note}")
    rows: dict[str, list[Row]] = {}
    predictions: dict[str, dict[str, np.ndarray]] = {c.name: {} for c in cases}
    seconds: dict[str, float] = {}
    for name, value in args.models:
        ckpt = resolve_checkpoint(value, name, work)
        out = work / "outputs" / name
        cmd = bundle_command(bundle_root, images, out, ckpt, args.model_args.get(name, ()))
        seconds[name] = run_bundle(cmd, bundle_root, args.code_root)
        rows[name] = score_outputs(name, cases, functools.partial(read_bundle_case, out), predictions)
    if args.unets:
        preprocessing = bundle_preprocessing(bundle_root)
    for name, value in args.unets:
        net, start = load_unet(Path(value)), time.perf_counter()
        predict = functools.partial(unet_case, net, preprocessing, images, settings["min_voxels"])
        rows[name] = score_outputs(name, cases, predict, predictions)
        seconds[name] = time.perf_counter() - start
    ceiling = score_outputs(GRID_CEILING, cases, lambda c: (grid_ceiling_labels(c, settings["spatial_size"]),
                                                            c.present, {}), {c.name: {} for c in cases})
    summaries = {name: summarise(r) for name, r in rows.items()}
    for name, r in rows.items():
        print(f"\n## {name} ({seconds[name]:.1f} s)\n\n{format_table(r)}\n\n{format_summary(name, summaries[name])}")
    print(f"\n## {GRID_CEILING}: the reference labels through the {'x'.join(map(str, settings['spatial_size']))} "
          "grid and back (a stage 1 right on every grid voxel; calls are the truth)\n")
    print(format_summary(GRID_CEILING, summarise(ceiling)))
    print("upper_abdomen per structure: " + ", ".join(
        f"{r.structure} {r.dice:.3f}" for r in ceiling if r.case == UPPER_CASE and r.dice is not None))
    load_end = os.getloadavg()
    print(f"\n# load average at end {load_end}")
    figures = [] if args.no_figures else [
        str(overview_figure(c, predictions[c.name], args.figure_dir / f"{c.name}.png")) for c in cases
    ]  # fmt: skip
    result = {
        "settings": {**settings, "bundle_root": str(bundle_root), "models": dict(args.models),
                     "model_args": args.model_args, "unets": dict(args.unets), "thin_slices": args.thin_slices,
                     "bed_dilation": args.bed_dilation, "seed": args.seed,
                     "code_root": str(args.code_root) if args.code_root else None},
        "load_average": {"start": load_start, "end": load_end}, "seconds": seconds,
        "cases": [{"case": c.name, "shape": list(c.image.shape), "present": c.present, "dice_slices": c.dice_slices,
                   "note": c.note} for c in cases],
        "rows": {name: [x._asdict() for x in r] for name, r in rows.items()},
        "summaries": summaries, "figures": figures,
        "grid_ceiling": {"rows": [x._asdict() for x in ceiling], "summary": summarise(ceiling)},
    }  # fmt: skip
    write_result_json(args.output_json, result)
    return result


if __name__ == "__main__":
    main()
