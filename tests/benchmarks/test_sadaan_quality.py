"""``benchmarks/sadaan_quality.py --no_unet``: SADAAn scored alone, no baseline trained or loaded."""

from __future__ import annotations

import pytest

from tests.benchmark_scripts import load_benchmark

# the shipped weights were trained on the abdominal phantoms with the presence fusion on
_SHIPPED = ["--override", 'data_generator="abdomen"', "data_domain_randomization=0.0", "presence_fusion=true"]


def test_no_unet_scores_sadaan_alone(tmp_path, capsys):
    bench = load_benchmark("sadaan_quality")
    bench.main(["--work_dir", str(tmp_path), "--heldout_cases", "8", "--heldout_seed", "5", "--no_unet", *_SHIPPED])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("SADAAn ", "UNet "))]
    assert rows and {r[0] for r in rows} == {"SADAAn"}
    assert "UNet" not in out and not (tmp_path / "unet_baseline.pt").exists()
    # every held-out case is scored once, in its scenario's row and in the "all" row
    all_row = next(r for r in rows if r[1] == "all")
    assert int(all_row[2]) == 8
    assert sum(int(r[2]) for r in rows if r[1] != "all") == 8
    assert not (tmp_path / "data").exists()  # the training dataset is not needed without a UNet to train
    assert "targets: presence >= 0.98 every scenario:" in out


def test_no_unet_refuses_a_unet_checkpoint(tmp_path):
    bench = load_benchmark("sadaan_quality")
    with pytest.raises(SystemExit):
        bench.main(["--work_dir", str(tmp_path), "--no_unet", "--unet_ckpt", str(tmp_path / "unet.pt")])
    assert not (tmp_path / "data").exists()


def test_an_empty_test_split_is_refused(tmp_path):
    bench = load_benchmark("sadaan_quality")
    with pytest.raises(ValueError, match="expected at least one case in the test split of .*dataset.json, got none"):
        bench.main(["--work_dir", str(tmp_path), "--num_cases", "2", "--no_unet", *_SHIPPED])
