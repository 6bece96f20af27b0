"""``benchmarks/sadaan_cascade.py``: the two modes' bundle arguments, the target checks, the argument refusals, and
one tiny run of the whole script (a random tiny stage 2, a small synthetic CT) on the real cases."""

from __future__ import annotations

import json

import pytest
import torch

from tests.benchmark_scripts import load_benchmark


def _bench():
    return load_benchmark("sadaan_cascade")


def test_modes_pass_the_cascade_switch_and_the_weights(tmp_path):
    bench = _bench()
    assert bench.mode_args("stage1", tmp_path / "r.pt", ["--x", "1"]) == ["--cascade", "false"]
    assert bench.mode_args("cascade", tmp_path / "r.pt", ["--x", "1"]) == [
        "--cascade", "true", "--refine_ckpt_path", str(tmp_path / "r.pt"), "--x", "1"]  # fmt: skip
    with pytest.raises(ValueError, match="expected a mode from"):
        bench.mode_args("both", tmp_path / "r.pt", [])


def test_dice_targets_name_the_structures_below_them():
    bench = _bench()
    real = load_benchmark("sadaan_real_ct")
    row = lambda case, s, d: real.Row("m", case, s, True, True, 0.9, d, None, 10)  # noqa: E731
    rows = [row("upper_abdomen", "liver", 0.95), row("upper_abdomen", "spleen", 0.85),
            row("upper_abdomen", "pancreas", 0.71), row("whole", "spleen", 0.1)]  # fmt: skip
    assert bench.dice_targets(rows) == ["spleen 0.850 < 0.90"]


def test_size_line_gives_ratios_to_stage_1_and_the_targets():
    bench = _bench()
    base = {"mode": "stage1", "wall_s": 10.0, "peak_rss_mb": 1000.0, "case_seconds": {"ct": 6.0}}
    cascade = {"mode": "cascade", "wall_s": 25.0, "peak_rss_mb": 1500.0, "case_seconds": {"ct": 20.0}}
    assert bench.format_size_line("512x512x300", cascade, base) == (
        "| 512x512x300 | cascade | 25.0 | 20.0 | 1500 | 2.50 | 1.50 | met |")
    slow = {**cascade, "wall_s": 31.0}
    assert bench.format_size_line("512x512x300", slow, base).endswith("| missed |")


def test_missing_weights_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _bench().parse_args(["--refine_ckpt", str(tmp_path / "nope.pt")])
    assert "--refine_ckpt, got a missing path" in capsys.readouterr().err


def test_skip_real_and_no_synthetic_together_are_refused(tmp_path, capsys):
    (tmp_path / "r.pt").write_bytes(b"")
    args = _bench().parse_args(["--refine_ckpt", str(tmp_path / "r.pt"), "--skip_real", "--ckpt", str(tmp_path / "r.pt")])
    assert args.skip_real and not args.no_synthetic
    with pytest.raises(SystemExit):
        _bench().parse_args(["--refine_ckpt", str(tmp_path / "r.pt"), "--skip_real", "--no_synthetic"])
    assert "at most one of --no_synthetic and --skip_real, got both" in capsys.readouterr().err


@pytest.mark.slow
def test_a_tiny_run_scores_both_modes(tmp_path):
    from monai.networks.nets import BasicUNet

    bench = _bench()
    if not load_benchmark("sadaan_real_ct").DEFAULT_DATA.is_dir():
        pytest.skip("the real CT folder is missing (shared/ beside the checkout)")
    torch.manual_seed(0)
    torch.save({"model": BasicUNet(3, 7, 1, features=(2, 2, 2, 2, 2, 2)).state_dict()}, tmp_path / "refine.pt")
    out = tmp_path / "result.json"
    result = bench.main([
        "--refine_ckpt", str(tmp_path / "refine.pt"), "--work_dir", str(tmp_path / "work"), "--size", "24",
        "--slices", "16", "--cascade_args",
        "--fine_spacing 6.0 --refine_features [2,2,2,2,2,2] --cascade_roi_size [32,32,32]",
        "--output_json", str(out)])  # fmt: skip
    assert set(result["rows"]) == {"stage1", "cascade"}
    stage1, cascade = result["rows"]["stage1"], result["rows"]["cascade"]
    assert len(stage1) == len(cascade) == 8 * 5  # the real case and seven derived from it, five structures
    # the cascade never changes a call, and paints nothing for a structure called absent
    assert [r["call"] for r in stage1] == [r["call"] for r in cascade]
    assert all(r["painted_voxels"] == 0 for r in cascade if not r["call"])
    assert [m["shape"] for m in result["clinical_size"]] == [[24, 24, 16]] * 2
    assert json.loads(out.read_text())["summaries"].keys() == {"stage1", "cascade"}
