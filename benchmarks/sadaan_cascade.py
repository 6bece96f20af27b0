"""Stage 1 alone against the cascade (issue 25): Dice against TotalSegmentator on the real case, time and peak memory.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/sadaan_cascade.py --refine_ckpt models/refine.pt
        [--ckpt CKPT] [--bundle_root DIR] [--data_dir DIR] [--work_dir DIR] [--size 512] [--slices 300]
        [--no_synthetic | --skip_real] [--cascade_args "--cascade_roi_size [96,96,96]"] [--output_json OUT.json]

Two modes run the bundle's own inference command (``configs/inference.json``), each in its own process, as a user
would: **stage1** (``--cascade false``) and **cascade** (``--cascade true --refine_ckpt_path REFINE``), both with
the same stage-1 weights (``--ckpt``, default the bundle's ``models/model.pt``).

1. The real validation case and the cases derived from it, made by ``benchmarks/sadaan_real_ct.py``'s own
   functions (``load_sources``, ``derive_cases``: whole, upper abdomen, pelvis only, thin slab, nephrectomies,
   splenectomy; read ``../shared/data/real_ct/totalsegmentator_example/SOURCE.md``), scored by its ``score_case``:
   per case and structure the call and Dice against TotalSegmentator's labels (false-positive mL for absent ones).
   The issue's targets: upper abdomen Dice >= 0.90 for liver, spleen and both kidneys, >= 0.70 for the pancreas.
2. A ``--size x --size x --slices`` CT (512 x 512 x 300: ``sadaan_clinical_ct.make_volume``, the real CT resampled
   to that grid) through each mode: wall time of the process, its peak resident memory (``wait4``'s
   ``ru_maxrss``), and the inference seconds of the run manifest (start-up excluded). Targets for the cascade:
   <= 30 s and <= 2 GB on the 2-core CPU.

``--skip_real`` runs the clinical-size timing alone (two bundle runs), ``--no_synthetic`` the real cases alone. Each
line says which mode, and the cascade / stage-1 ratio of time and memory. Dice here is agreement with
TotalSegmentator, itself a model, not manual truth. The real CT is read for validation only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, imported as modules

import sadaan_clinical_ct as clinical  # noqa: E402
import sadaan_real_ct as real  # noqa: E402

MODES = ("stage1", "cascade")
TARGET_DICE = {"liver": 0.90, "spleen": 0.90, "left_kidney": 0.90, "right_kidney": 0.90, "pancreas": 0.70}
TARGET_SECONDS, TARGET_MB = 30.0, 2048.0


def mode_args(mode: str, refine_ckpt: Path, extra: list[str]) -> list[str]:
    """The bundle arguments of a mode: ``--cascade false``, or ``--cascade true`` with the stage-2 weights."""
    if mode not in MODES:
        raise ValueError(f"expected a mode from {MODES}, got {mode!r}")
    if mode == "stage1":
        return ["--cascade", "false"]
    return ["--cascade", "true", "--refine_ckpt_path", str(refine_ckpt), *extra]


def run_mode(
    mode: str, images: Path, out: Path, ckpt: Path, refine_ckpt: Path, bundle_root: Path, extra: list[str]
) -> dict[str, Any]:
    """Run the bundle on a folder in one mode; wall seconds, peak RSS (MB), start-up and per-case seconds."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = real.bundle_command(bundle_root, images, out, ckpt) + mode_args(mode, refine_ckpt, extra)
    wall, rss, _ = clinical.run_measured(cmd, cwd=bundle_root)
    manifest = json.loads((out / "sadaan_run.json").read_text())
    timing = manifest.get("timing") or {}
    return {
        "mode": mode, "wall_s": wall, "peak_rss_mb": rss, "startup_s": clinical.startup_seconds(wall, manifest),
        "case_seconds": {c.get("case", str(i)): float(c["seconds"]) for i, c in enumerate(timing.get("cases", []))},
    }  # fmt: skip


def dice_targets(rows: list[Any]) -> list[str]:
    """The upper-abdomen structures below the issue's Dice target, as ``structure dice < target``."""
    out = []
    for r in rows:
        if r.case == real.UPPER_CASE and r.dice is not None and r.dice < TARGET_DICE[r.structure]:
            out.append(f"{r.structure} {r.dice:.3f} < {TARGET_DICE[r.structure]:.2f}")
    return out


def format_size_line(size: str, m: dict[str, Any], base: dict[str, Any]) -> str:
    """``| size | mode | wall s | inference s | peak MB | x stage1 time | x stage1 memory | targets |``."""
    inference = sum(m["case_seconds"].values()) if m["case_seconds"] else float("nan")
    ok = m["wall_s"] <= TARGET_SECONDS and m["peak_rss_mb"] <= TARGET_MB
    return (
        f"| {size} | {m['mode']} | {m['wall_s']:.1f} | {inference:.1f} | {m['peak_rss_mb']:.0f} | "
        f"{m['wall_s'] / base['wall_s']:.2f} | {m['peak_rss_mb'] / base['peak_rss_mb']:.2f} | "
        f"{'met' if ok else 'missed'} |"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--refine_ckpt", type=Path, required=True, help="stage-2 weights (configs/train_refine.json)")
    p.add_argument("--ckpt", type=Path, default=None, help="stage-1 weights (default <bundle_root>/models/model.pt)")
    p.add_argument("--bundle_root", type=Path, default=real.BUNDLE, help="bundle folder whose configs run")
    p.add_argument("--data_dir", type=Path, default=real.DEFAULT_DATA, help="folder of the TotalSegmentator example")
    p.add_argument("--work_dir", type=Path, default=None, help="derived cases and outputs (default: a temp dir)")
    p.add_argument("--size", type=int, default=512, help="in-plane voxels of the synthetic clinical-size CT")
    p.add_argument("--slices", type=int, default=300, help="slices of the synthetic clinical-size CT")
    p.add_argument("--no_synthetic", action="store_true", help="skip the clinical-size timing")
    p.add_argument("--skip_real", action="store_true", help="skip the real cases (the clinical-size timing alone)")
    p.add_argument("--cascade_args", default="", help="extra bundle arguments of the cascade mode (shell words)")
    p.add_argument("--thin_slices", type=int, default=6, help="as benchmarks/sadaan_real_ct.py")
    p.add_argument("--bed_dilation", type=int, default=2, help="as benchmarks/sadaan_real_ct.py")
    p.add_argument("--seed", type=int, default=0, help="as benchmarks/sadaan_real_ct.py")
    p.add_argument("--output_json", type=Path, default=None, help="write rows, summaries and timings here")
    args = p.parse_args(argv)
    if not args.refine_ckpt.is_file():
        p.error(f"expected the stage-2 weights file given by --refine_ckpt, got a missing path: {args.refine_ckpt}")
    if args.no_synthetic and args.skip_real:
        p.error("expected at most one of --no_synthetic and --skip_real, got both (nothing would run)")
    if args.size < 8 or args.slices < 8:
        p.error(f"expected --size and --slices >= 8, got {args.size} and {args.slices}")
    args.ckpt = args.ckpt or args.bundle_root / "models" / "model.pt"
    if not args.ckpt.is_file():
        p.error(f"expected the stage-1 weights file (--ckpt), got a missing path: {args.ckpt}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    work = (args.work_dir or Path(tempfile.mkdtemp(prefix="sadaan_cascade_"))).resolve()
    bundle_root = args.bundle_root.resolve()
    ckpt, refine = args.ckpt.resolve(), args.refine_ckpt.resolve()
    extra = shlex.split(args.cascade_args)
    settings = real.bundle_settings(bundle_root)
    print(f"# {os.uname().nodename}, {os.cpu_count()} CPUs; load average at start {os.getloadavg()}; work {work}")
    rows: dict[str, list[Any]] = {}
    runs: dict[str, dict[str, Any]] = {}
    if not args.skip_real:
        cases = real.derive_cases(real.load_sources(args.data_dir), settings["spatial_size"], settings["min_voxels"],
                                  args.thin_slices, args.bed_dilation, args.seed)  # fmt: skip
        images, _ = real.write_cases(cases, work)
        predictions: dict[str, dict[str, Any]] = {c.name: {} for c in cases}
        for mode in MODES:
            out = work / "outputs" / mode
            runs[mode] = run_mode(mode, images, out, ckpt, refine, bundle_root, extra)
            rows[mode] = real.score_outputs(mode, cases, lambda c, o=out: real.read_bundle_case(o, c), predictions)
    summaries = {mode: real.summarise(r) for mode, r in rows.items()}
    for mode in rows:
        below = dice_targets(rows[mode])
        print(f"\n## {mode} (real cases: {runs[mode]['wall_s']:.1f} s, {runs[mode]['peak_rss_mb']:.0f} MB)\n")
        print(real.format_table(rows[mode]))
        print("\n" + real.format_summary(mode, summaries[mode]))
        print(f"upper-abdomen Dice targets: {'all met' if not below else 'missed: ' + ', '.join(below)}")
    sizes: list[dict[str, Any]] = []
    if not args.no_synthetic:
        shape = (args.size, args.size, args.slices)
        folder = work / "clinical_size"
        clinical.make_volume(args.data_dir / "example_ct.nii.gz", shape, folder / f"ct_{'x'.join(map(str, shape))}.nii.gz")
        measured = {mode: run_mode(mode, folder, work / "outputs" / f"{mode}_size", ckpt, refine, bundle_root, extra)
                    for mode in MODES}  # fmt: skip
        label = "x".join(map(str, shape))
        print(f"\n## {label} CT (targets for the cascade: <= {TARGET_SECONDS:.0f} s, <= {TARGET_MB:.0f} MB)\n")
        print("| CT | mode | wall s | inference s | peak MB | x stage1 time | x stage1 memory | targets |")
        print("|---|---|---|---|---|---|---|---|")
        for mode in MODES:
            print(format_size_line(label, measured[mode], measured["stage1"]))
        sizes = [{"shape": list(shape), **m} for m in measured.values()]
    print(f"\n# load average at end {os.getloadavg()}")
    result = {
        "settings": {**settings, "ckpt": str(ckpt), "refine_ckpt": str(refine), "cascade_args": extra,
                     "bundle_root": str(bundle_root)},
        "runs": runs, "rows": {m: [r._asdict() for r in rs] for m, rs in rows.items()}, "summaries": summaries,
        "below_dice_targets": {m: dice_targets(rs) for m, rs in rows.items()}, "clinical_size": sizes,
    }  # fmt: skip
    real.write_result_json(args.output_json, result)
    return result


if __name__ == "__main__":
    main()
