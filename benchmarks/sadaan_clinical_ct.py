"""SADAAn bundle inference at clinical size: wall time and peak memory against a floor (issue 26).

    flock /tmp/heavy.lock python benchmarks/sadaan_clinical_ct.py [--slices 300] [--size 512] [--folder 10]
        [--repeat 1] [--source CT.nii.gz] [--work_dir DIR] [--bundle_args "..."] [--code_root DIR] [--json OUT.json]

For each ``--slices`` value it makes a ``size x size x slices`` int16 CT by resampling the real CT ``--source``
(default ``../shared/data/real_ct/totalsegmentator_example/example_ct.nii.gz``, trilinear, same field of view) into
``--work_dir`` (default: a temporary folder), then runs, one after the other, each in its own process:

* **floor**: a process that imports torch and monai, reads the same file with nibabel and writes a label map of
  the same size (uint8, ``.nii.gz`` at nibabel's gzip level; a threshold of the CT at 200 HU, about as sparse as
  organ masks);
* **bundle**: ``python -m monai.bundle run --config_file configs/inference.json --dataset_dir D --output_dir O``
  in the bundle folder, with the shipped model.

Each process's wall time is measured from its start to its end, and its peak resident memory is the kernel's high
water mark of that process (``wait4``'s ``ru_maxrss``: threads included; the bundle starts no other process). The
lines give both, and the bundle / floor ratios. With ``--folder N`` it also runs the bundle on a folder of N copies
of the first volume and compares its time per case with the single-case time, both without start-up: start-up is
the bundle's wall time minus what its run manifest (``sadaan_run.json``) times as input checks, inference and commit
(imports, config parsing).

``--code_root DIR`` runs the bundle and ``monai_sadaan`` of another checkout of this project (``PYTHONPATH=DIR``,
the bundle folder under DIR), e.g. ``git archive <commit> monai_sadaan bundles | tar -x -C DIR`` for a
before / after comparison on the same machine; a run manifest without timing gives no start-up figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "sadaan_abdominal_ct_segmentation"
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "real_ct" / "totalsegmentator_example" / "example_ct.nii.gz"

FLOOR_SCRIPT = """
import sys
import numpy as np, nibabel as nib, torch, monai
img = nib.load(sys.argv[1])
data = np.asanyarray(img.dataobj)
labels = (data >= 200).astype(np.uint8)
nib.save(nib.Nifti1Image(labels, img.affine), sys.argv[2])
print(float(labels.mean()))
"""
"""The floor: import torch and monai, read the CT, write a same-size uint8 label map (argv: input, output)."""


class Measurement(NamedTuple):
    what: str  # "floor" or "bundle"
    slices: int
    cases: int
    wall_s: float
    peak_rss_mb: float
    startup_s: float | None = None  # bundle only: wall time not in the manifest's timing
    case_seconds: list[float] | None = None


def resampled_affine(affine: np.ndarray, shape_in: tuple[int, ...], shape_out: tuple[int, ...]) -> np.ndarray:
    """The affine of ``shape_out`` voxels covering the field of view of ``shape_in`` voxels of ``affine`` (voxel
    centres as ``align_corners=False`` interpolation places them)."""
    scale = np.asarray(shape_in, dtype=np.float64) / np.asarray(shape_out, dtype=np.float64)
    m = np.eye(4)
    m[:3, :3] = np.diag(scale)
    m[:3, 3] = (scale - 1.0) / 2.0
    return np.asarray(affine, dtype=np.float64) @ m


def make_volume(source: Path, shape: tuple[int, int, int], path: Path) -> Path:
    """Resample ``source`` (trilinear, same field of view) to ``shape`` voxels; write int16 NIfTI at ``path``."""
    import nibabel as nib
    import torch
    import torch.nn.functional as F

    img = nib.load(str(source))
    data = torch.from_numpy(np.asarray(img.dataobj, dtype=np.float32))[None, None]
    out = np.empty(shape, dtype=np.int16, order="F")
    # the first two axes at the source's slice count, then the slices in slabs: the parent stays small
    full = F.interpolate(data, size=(shape[0], shape[1], data.shape[-1]), mode="trilinear", align_corners=False)[0, 0]
    step = max(1, (64 << 20) // (shape[0] * shape[1] * 4))
    for z0 in range(0, shape[2], step):
        z1 = min(z0 + step, shape[2])
        scale = data.shape[-1] / shape[2]
        src = np.clip((np.arange(z0, z1) + 0.5) * scale - 0.5, 0, data.shape[-1] - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, data.shape[-1] - 1)
        w = torch.from_numpy((src - lo).astype(np.float32))
        slab = full[..., lo] * (1 - w) + full[..., hi] * w
        out[..., z0:z1] = np.rint(slab.numpy())
    affine = resampled_affine(img.affine, img.shape, shape)
    new = nib.Nifti1Image(out, affine)
    new.set_qform(affine, code=1)
    new.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(new, str(path))
    return path


def run_measured(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; ``(wall seconds, peak RSS in MB, output)``. Raises SystemExit when it fails."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-3000:]}")
    return wall, usage.ru_maxrss / 1024.0, output  # ru_maxrss: KiB on Linux


def floor(ct: Path, work: Path, slices: int) -> Measurement:
    out = work / f"floor_{slices}.nii.gz"
    wall, rss, _ = run_measured([sys.executable, "-c", FLOOR_SCRIPT, str(ct), str(out)])
    out.unlink(missing_ok=True)
    return Measurement("floor", slices, 1, wall, rss)


def startup_seconds(wall: float, manifest: dict) -> float | None:
    """The bundle's wall time not timed by its run manifest (imports, config parsing, process start and end);
    ``None`` for a manifest without timing (a version before issue 26)."""
    t = manifest.get("timing")
    if not t:
        return None
    return wall - sum(float(t[k] or 0.0) for k in ("preflight_seconds", "inference_seconds", "commit_seconds"))


def bundle(
    images: Path, work: Path, slices: int, cases: int, extra: list[str], code_root: Path | None = None
) -> Measurement:
    out = work / f"out_{slices}_{cases}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/inference.json",
           "--dataset_dir", str(images), "--output_dir", str(out), *extra]  # fmt: skip
    env = None
    cwd = BUNDLE
    if code_root is not None:
        paths = [str(code_root), os.environ.get("PYTHONPATH")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        cwd = Path(code_root) / BUNDLE.relative_to(ROOT)
    wall, rss, _ = run_measured(cmd, cwd=cwd, env=env)
    manifest = json.loads((out / "sadaan_run.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    timing = manifest.get("timing") or {}
    seconds = [float(c["seconds"]) for c in timing.get("cases", [])] or None
    return Measurement("bundle", slices, cases, wall, rss, startup_seconds(wall, manifest), seconds)


def line(b: Measurement, f: Measurement) -> str:
    startup = "-" if b.startup_s is None else f"{b.startup_s:.1f}"
    return (
        f"| {b.slices} | {b.cases} | {f.wall_s:.1f} | {f.peak_rss_mb:.0f} | {b.wall_s:.1f} | {b.peak_rss_mb:.0f} | "
        f"{b.wall_s / f.wall_s:.2f} | {b.peak_rss_mb / f.peak_rss_mb:.2f} | {startup} |"
    )


def folder_ratio(single: Measurement, many: Measurement) -> float:
    """Time per case of the folder run over the single-case time, both without start-up."""
    return ((many.wall_s - many.startup_s) / many.cases) / (single.wall_s - single.startup_s)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slices", type=int, nargs="+", default=[300])
    p.add_argument("--size", type=int, default=512, help="voxels along the first two axes")
    p.add_argument("--folder", type=int, default=0, help="also run a folder of this many cases (first --slices)")
    p.add_argument("--repeat", type=int, default=1, help="measure each line this many times")
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    p.add_argument("--work_dir", type=Path, default=None)
    p.add_argument("--bundle_args", default="", help="extra arguments of the bundle command")
    p.add_argument("--code_root", type=Path, default=None, help="run the bundle and monai_sadaan of this checkout")
    p.add_argument("--json", type=Path, default=None, help="write every measurement here")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.folder < 0 or args.size < 1 or min(args.slices) < 1:
        p.error("expected --repeat >= 1, --folder >= 0, --size >= 1 and --slices >= 1")
    return args


def main(argv: list[str] | None = None) -> list[Measurement]:
    args = parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="sadaan_clinical_"))
    extra = shlex.split(args.bundle_args)
    results: list[Measurement] = []
    print(f"# {os.uname().nodename}, {os.cpu_count()} CPUs; load average at start {os.getloadavg()}")
    print("| slices | cases | floor s | floor MB | bundle s | bundle MB | time ratio | memory ratio | start-up s |")
    print("|---|---|---|---|---|---|---|---|---|")
    try:
        singles = {}
        for slices in args.slices:
            images = work / f"ct_{slices}"
            ct = make_volume(args.source, (args.size, args.size, slices), images / f"ct{args.size}_{slices}.nii.gz")
            for _ in range(args.repeat):
                f = floor(ct, work, slices)
                b = bundle(images, work, slices, 1, extra, args.code_root)
                results += [f, b]
                singles.setdefault(slices, b)
                print(line(b, f), flush=True)
        if args.folder:
            slices = args.slices[0]
            first = next((work / f"ct_{slices}").glob("*.nii.gz"))
            folder = work / f"folder_{slices}"
            folder.mkdir(exist_ok=True)
            for i in range(args.folder):
                shutil.copyfile(first, folder / f"case_{i:02d}.nii.gz")
            for _ in range(args.repeat):
                f = floor(first, work, slices)
                many = bundle(folder, work, slices, args.folder, extra, args.code_root)
                results += [f, many]
                print(line(many, f), flush=True)
                if many.startup_s is None or singles[slices].startup_s is None:
                    continue
                ratio = folder_ratio(singles[slices], many)
                print(
                    f"\nfolder of {args.folder}: {many.wall_s:.1f} s, "
                    f"{(many.wall_s - many.startup_s) / args.folder:.2f} s "
                    f"per case without start-up, {ratio:.2f}x the single case's "
                    f"{singles[slices].wall_s - singles[slices].startup_s:.2f} s (target <= 1.3); cases: "
                    + ", ".join(f"{s:.2f}" for s in many.case_seconds or []),
                    flush=True,
                )
        print(f"\nload average at end {os.getloadavg()}")
    finally:
        if args.json is not None:
            args.json.write_text(json.dumps([r._asdict() for r in results], indent=2) + "\n")
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
