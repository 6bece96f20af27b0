"""The pieces of ``benchmarks/sadaan_presence_fusion_variants.py``: set parsing, error counts, the fitted rules."""

from __future__ import annotations

import argparse

import pytest
import torch

from monai_sadaan.networks.blocks.presence_fusion import LEGACY_EVIDENCE_COUNT, PRESENCE_EVIDENCE_NAMES
from tests.benchmark_scripts import load_benchmark

K = len(PRESENCE_EVIDENCE_NAMES)
EDGE = PRESENCE_EVIDENCE_NAMES.index("edge_fraction")


def _benchmark():
    return load_benchmark("sadaan_presence_fusion_variants")


def test_parse_set():
    bench = _benchmark()
    assert bench.parse_set("9:420:uniform") == (9, 420, "uniform")
    assert bench.WEIGHTS["fov6"]["partial_fov"] == 6 and bench.WEIGHTS["fov6"]["normal"] == 1
    for bad in ("9:420", "x:420:uniform", "9:420:most"):
        with pytest.raises(argparse.ArgumentTypeError, match="SEED:CASES:WEIGHTS"):
            bench.parse_set(bad)


def test_count_errors_by_hand():
    bench = _benchmark()
    logits = torch.tensor([[1.0, -1.0], [0.0, -2.0], [-1.0, 3.0]])
    targets = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    # case 0: second call wrong; case 1: first call (0 -> present) wrong; case 2: both right
    assert bench.count_errors(logits, targets, ["partial_fov", "normal", "partial_fov"]) == (1, 1)
    assert bench.count_errors(logits, targets, ["normal"] * 3) == (0, 2)


def _evidence(n: int = 60, s: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(n, s, K, generator=g)
    e[..., EDGE] = torch.rand(n, s, generator=g)  # a share of the mass on the faces
    targets = (e[..., 3] > 0).float()  # log_mask_voxels decides
    return e, targets


def test_rules_decide_on_gated_pairs_and_keep_the_head_elsewhere():
    bench = _benchmark()
    e, y = _evidence()
    inside = e[..., EDGE] < bench.GATE
    assert bool(inside.any()) and bool((~inside).any())
    rules = (
        bench.fusion_rule(e, y, 1e-4, gated_only=True),
        bench.fusion_rule(e, y, 1e-3, gated_only=True, hidden_channels=4),
        bench.fusion_rule(e, y, 1e-3, gated_only=False),
        bench.fusion_rule(e, y, 1e-3, gated_only=False, legacy=True),
    )
    for rule in rules:
        z = rule(e)
        assert z.shape == y.shape
        assert torch.equal(z[inside], e[..., 0][inside])  # the head's own logit where the gate is shut
        assert bool(((z[~inside] >= 0).float() == y[~inside]).float().mean() > 0.9)  # the rule the evidence carries


def test_legacy_recipe_ignores_the_newer_evidence():
    bench = _benchmark()
    e, y = _evidence()
    y = (e[..., LEGACY_EVIDENCE_COUNT + 1] > 0).float()  # decided by an evidence value 0.7.0 did not have
    legacy = bench.fusion_rule(e, y, 1e-3, gated_only=False, legacy=True)
    scrambled = e.clone()
    scrambled[..., LEGACY_EVIDENCE_COUNT:] = torch.randn_like(scrambled[..., LEGACY_EVIDENCE_COUNT:])
    assert torch.equal(legacy(e), legacy(scrambled))
    full = bench.fusion_rule(e, y, 1e-3, gated_only=False)
    gate = e[..., EDGE] >= bench.GATE
    assert bool(((full(e)[gate] >= 0).float() == y[gate]).float().mean() > 0.9)


def test_gate_and_seed_of_a_fit():
    bench = _benchmark()
    e, y = _evidence(n=80)
    low = bench.fusion_rule(e, y, 1e-3, gated_only=True, hidden_channels=4, gate=0.05)
    z = low(e)
    shut = e[..., EDGE] < 0.05
    assert bool(shut.any())
    assert torch.equal(z[shut], e[..., 0][shut])  # only below the lower gate does the head's logit stand
    opened = (e[..., EDGE] >= 0.05) & (e[..., EDGE] < bench.GATE)
    assert bool(opened.any()) and not torch.equal(z[opened], e[..., 0][opened])
    # the hidden layer's starting weights follow the seed: same seed, same fit; another seed, another fit
    a = bench.fusion_rule(e, y, 1e-3, gated_only=True, hidden_channels=4, seed=1)(e)
    b = bench.fusion_rule(e, y, 1e-3, gated_only=True, hidden_channels=4, seed=1)(e)
    c = bench.fusion_rule(e, y, 1e-3, gated_only=True, hidden_channels=4, seed=2)(e)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sweep_without_extra_fit_is_refused_before_anything_is_written(tmp_path, capsys):
    bench = _benchmark()
    work = tmp_path / "work"
    with pytest.raises(SystemExit) as stop:
        bench.main(["--work_dir", str(work), "--sweep"])
    assert stop.value.code == 2
    assert "expected --extra_fit" in capsys.readouterr().err
    assert not work.exists()
