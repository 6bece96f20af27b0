"""The main job on built-in data: generate CT-like phantoms with absent organs, run the SADAAn bundle's inference
on them, and write masks, Slicer segmentations, presence reports and a PNG overview per case.

    python -m monai_sadaan.demo --output_dir outputs/demo

Nothing is downloaded: the inputs come from :mod:`monai_sadaan.data` and the weights from the bundle's
``models/model.pt``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEFAULT_BUNDLE", "DEMO_SCENARIOS", "write_demo_inputs", "run_demo", "main"]


def _default_bundle() -> Path:
    """The SADAAn bundle of this installation: the wheel's copy, else the checkout's ``bundles/``."""
    from monai_glue.bundles import bundles_dir

    try:
        return bundles_dir() / "sadaan_abdominal_ct_segmentation"
    except FileNotFoundError:  # reported by run_demo, which names the missing files
        return Path(__file__).resolve().parents[1] / "bundles" / "sadaan_abdominal_ct_segmentation"


DEFAULT_BUNDLE = _default_bundle()
DEMO_SCENARIOS = ("normal", "nephrectomy_left", "nephrectomy_bilateral", "splenectomy", "partial_fov")


def write_demo_inputs(input_dir: Path, scenarios: Sequence[str], seed: int) -> dict[str, dict]:
    """Write one phantom image per scenario into ``input_dir``; return the truth per case name."""
    from monai_sadaan.data import generate_phantom, save_phantom

    input_dir.mkdir(parents=True, exist_ok=True)
    truth: dict[str, dict] = {}
    for i, scenario in enumerate(scenarios):
        phantom = generate_phantom(scenario, seed=seed + 1000 * i)
        case = f"demo_{i:02d}_{scenario}"
        save_phantom(phantom, input_dir / f"{case}.nii.gz")
        truth[case] = {"scenario": scenario, "present": dict(phantom.present)}
    return truth


def run_demo(output_dir: str | Path, bundle_dir: str | Path = DEFAULT_BUNDLE, scenarios: Sequence[str] = DEMO_SCENARIOS, seed: int = 7) -> list[dict]:
    """Generate inputs, run the bundle, render overviews; return one row per case and structure."""
    from monai.bundle import run

    from monai_sadaan.io.overview import render_case_overview
    from monai_sadaan.io.presence import read_presence_report
    from monai_sadaan.io.run_outputs import register_case_files

    out = Path(output_dir)
    bundle = Path(bundle_dir)
    if not (bundle / "configs" / "inference.json").is_file():
        raise FileNotFoundError(f"expected a SADAAn bundle with configs/inference.json in {bundle}, found none")
    if not (bundle / "models" / "model.pt").is_file():
        raise FileNotFoundError(f"expected trained weights at {bundle / 'models' / 'model.pt'}, found none")
    inputs, predictions = out / "inputs", out / "predictions"
    truth = write_demo_inputs(inputs, scenarios, seed)
    t0 = time.time()
    run(
        config_file=str(bundle / "configs" / "inference.json"),
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=str(bundle / "configs" / "logging.conf"),
        bundle_root=str(bundle),
        dataset_dir=str(inputs),
        output_dir=str(predictions),
    )
    seconds = time.time() - t0
    rows: list[dict] = []
    for case, info in truth.items():
        case_dir = predictions / case
        report = read_presence_report(case_dir / f"{case}_presence.json")
        render_case_overview(inputs / f"{case}.nii.gz", case_dir, case_dir / f"{case}_overview.png", title=f"{case} (SADAAn)")
        register_case_files(case_dir, [f"{case}_overview.png"])  # part of the result: a rerun may replace it
        for s in report["structures"]:
            rows.append(
                {
                    "case": case,
                    "scenario": info["scenario"],
                    "structure": s.structure,
                    "truly_present": info["present"].get(s.structure),
                    "called_present": s.present,
                    "presence_probability": round(s.presence_probability, 3),
                    "confidence": round(s.confidence, 3),
                    "volume_ml": round(s.volume_ml, 1),
                }
            )
    with open(out / "demo_summary.json", "w", encoding="utf-8") as f:
        json.dump({"inference_seconds": round(seconds, 2), "rows": rows}, f, indent=2)
    return rows


def _print_table(rows: Sequence[dict]) -> None:
    header = f"{'case':<28} {'structure':<13} {'truth':<7} {'call':<7} {'p(present)':>10} {'conf':>6} {'mL':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        truth = "present" if r["truly_present"] else "absent"
        call = "present" if r["called_present"] else "absent"
        mark = "" if r["truly_present"] == r["called_present"] else "  <- wrong"
        print(
            f"{r['case']:<28} {r['structure']:<13} {truth:<7} {call:<7} {r['presence_probability']:>10.3f} "
            f"{r['confidence']:>6.2f} {r['volume_ml']:>8.1f}{mark}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run SADAAn on generated phantoms with absent organs.")
    parser.add_argument("--output_dir", default="outputs/demo", help="where inputs, predictions and overviews go")
    parser.add_argument("--bundle_dir", default=str(DEFAULT_BUNDLE), help="the SADAAn bundle folder")
    parser.add_argument("--scenarios", nargs="+", default=list(DEMO_SCENARIOS), help="one case per scenario")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    from monai_sadaan.io.run_outputs import InferenceRunFailed

    try:
        rows = run_demo(args.output_dir, args.bundle_dir, args.scenarios, args.seed)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except InferenceRunFailed as e:  # the bundle's refusals and known failures, one line
        print(e.code, file=sys.stderr)
        return 2
    _print_table(rows)
    correct = sum(r["truly_present"] == r["called_present"] for r in rows)
    print(f"\npresence calls right: {correct}/{len(rows)}")
    print(f"outputs: {Path(args.output_dir) / 'predictions'} (per case: label map, .seg.nrrd, presence JSON/CSV, overview PNG)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
