"""``benchmarks/sadaan_forward.py``: the variants ``--variants`` / ``--no-train`` select, and their refusals (the
measurements themselves are the benchmark's, not run here)."""

from __future__ import annotations

import pytest

from tests.benchmark_scripts import load_benchmark


def _bench():
    return load_benchmark("sadaan_forward")


def test_all_variants_by_default_in_run_order():
    bench = _bench()
    assert bench.select_variants(None) == list(bench.VARIANTS)
    assert bench.VARIANTS == ("literal", "efficient", "optimised", "conv", "train", "train_checkpointed")
    assert bench.select_variants(None, no_train=True) == ["literal", "efficient", "optimised", "conv"]


def test_named_variants_run_in_run_order():
    bench = _bench()
    assert bench.select_variants("train_checkpointed, train") == ["train", "train_checkpointed"]
    assert bench.select_variants("conv,literal,,") == ["literal", "conv"]
    assert bench.select_variants("optimised,train", no_train=True) == ["optimised"]


def test_unknown_or_no_variants_are_refused():
    bench = _bench()
    with pytest.raises(ValueError, match="expected variants from literal, .*, got checkpointed, trian$"):
        bench.select_variants("train,trian,checkpointed")
    with pytest.raises(ValueError, match="expected at least one variant to run, got --variants 'train'"):
        bench.select_variants("train", no_train=True)
    with pytest.raises(ValueError, match="expected at least one variant to run"):
        bench.select_variants(" , ")
    with pytest.raises(SystemExit):  # the command line names the refusal through argparse
        bench.main(["--variants", "fast"])
