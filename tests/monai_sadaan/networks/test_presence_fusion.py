"""Presence evidence, the fusion that weighs it, and its closed-form fit on a frozen network."""

from __future__ import annotations

import json
import math

import pytest
import torch

from monai_sadaan.engines import (
    collect_presence_evidence,
    fit_presence_fusion,
    fit_presence_regression,
    fit_presence_rule,
    save_presence_fusion_fit,
)
from monai_sadaan.networks import PresenceEvidenceFusion, SpatialAttentionMedicalSegmenter, build_fast_inference
from monai_sadaan.networks.nets.presence_fusion import PRESENCE_EVIDENCE_NAMES, presence_evidence
from monai_glue.checkpoint import CheckpointError, load_state_dict_checked

TINY = {"spatial_size": (16, 16, 16), "features": (2, 4, 4, 4, 4), "feature_channels": 4}
K = len(PRESENCE_EVIDENCE_NAMES)


def _tiny(fusion: bool, seed: int = 0) -> SpatialAttentionMedicalSegmenter:
    torch.manual_seed(seed)
    return SpatialAttentionMedicalSegmenter(num_structures=3, presence_fusion=fusion, **TINY).eval()


def test_evidence_values_by_hand():
    probs = torch.zeros(1, 2, 4, 4, 4)
    probs[0, 0, 1, 1, 1] = 1.0  # interior voxel
    probs[0, 0, 0, 0, 0] = 0.8  # on a face
    probs[0, 1] = 0.3  # everywhere, never above 0.5
    image = torch.zeros(1, 1, 4, 4, 4)
    image[0, 0, 1, 1, 1], image[0, 0, 0, 0, 0] = 2.0, 1.0
    attention = torch.zeros(1, 2, 4, 4, 4)
    attention[0, 0, 2, 2, 2] = 0.5
    attention[0, 1] = 0.25
    responses = torch.full((1, 2, 4, 4, 4), -30.0)
    responses[0, 0, 3, 3, 3] = 4.0
    priors = torch.full((1, 2, 4, 4, 4), 0.25)
    priors[0, 0] = 0.5
    priors[0, 0, 1, 1, 1] = 1.0
    logits = torch.tensor([[[0.0, 25.0], [1.0, -2.0]]])
    e = presence_evidence(
        image, logits, torch.tensor([[0.6, 0.1]]), torch.tensor([[0.9, 0.2]]), probs, attention, responses, priors,
        edge_width=1,
    )  # fmt: skip
    assert e.shape == (1, 2, K)
    got0, got1 = dict(zip(PRESENCE_EVIDENCE_NAMES, e[0, 0].tolist())), dict(zip(PRESENCE_EVIDENCE_NAMES, e[0, 1].tolist()))
    m = (1.0 * 2.0 + 0.8 * 1.0) / 1.8
    sd = math.sqrt((1.0 * (2.0 - m) ** 2 + 0.8 * (1.0 - m) ** 2) / 1.8)
    want0 = {
        "head_logit": 20.0, "alignment_score": 0.6, "log_soft_volume": math.log(2.8), "log_mask_voxels": math.log(3.0),
        "max_segmentation_prob": 1.0, "mean_intensity_under_segmentation": m, "intensity_std_under_segmentation": sd,
        "edge_fraction": 0.8 / 1.8, "log_attention_mass": math.log(1.5), "max_attention": 0.5,
        "max_feature_response": 4.0, "confidence_score": 0.9,
        # structure 1 paints 0.3 everywhere; the prior is 1 at the interior voxel, 0.5 elsewhere
        "overlap_with_other_structures": 0.3, "position_prior_under_segmentation": (1.0 + 0.8 * 0.5) / 1.8,
        "attention_under_segmentation": 0.0, "mean_depth_from_faces": 1.0 / 1.8,
        # within 2 voxels of the two painted ones lies the whole 4^3 grid, all 0 in the image
        "boundary_contrast": 1.5, "boundary_intensity_std": 0.0,
        "centroid_axis_0": (-1 / 3 - 0.8) / 1.8, "centroid_axis_1": (-1 / 3 - 0.8) / 1.8,
        "centroid_axis_2": (-1 / 3 - 0.8) / 1.8, "feature_response_under_segmentation": 0.0,
    }  # fmt: skip
    # structure 1: 0.3 everywhere, so no voxel is painted and the intensity terms are 0; 56 of 64 voxels are on a face
    want1 = {
        "head_logit": -3.0, "alignment_score": 0.1, "log_soft_volume": math.log(1 + 0.3 * 64), "log_mask_voxels": 0.0,
        "max_segmentation_prob": 0.3, "mean_intensity_under_segmentation": 0.0, "intensity_std_under_segmentation": 0.0,
        "edge_fraction": 56 / 64, "log_attention_mass": math.log(1 + 0.25 * 64), "max_attention": 0.25,
        "max_feature_response": -20.0, "confidence_score": 0.2,
        "overlap_with_other_structures": 0.3 * 1.8 / (0.3 * 64), "position_prior_under_segmentation": 0.25,
        "attention_under_segmentation": 0.25, "mean_depth_from_faces": 8 / 64,  # the 2^3 core is 1 voxel deep
        "boundary_contrast": 0.0, "boundary_intensity_std": 0.0,
        "centroid_axis_0": 0.0, "centroid_axis_1": 0.0, "centroid_axis_2": 0.0,
        "feature_response_under_segmentation": 0.0,
    }  # fmt: skip
    assert got0 == pytest.approx(want0, rel=1e-5, abs=1e-6)
    assert got1 == pytest.approx(want1, rel=1e-5, abs=1e-6)
    with pytest.raises(ValueError, match="edge_width"):
        presence_evidence(
            image, logits, torch.zeros(1, 2), torch.zeros(1, 2), probs, attention, responses, priors, edge_width=2
        )


def test_unfitted_fusion_calls_what_the_head_calls_on_both_graphs():
    plain, fused = _tiny(False), _tiny(True)
    load_state_dict_checked(fused, plain.state_dict())  # a checkpoint from before the fusion existed
    x = torch.randn(2, 1, 16, 16, 16)
    for fast in (False, True):
        a, b = (build_fast_inference(n)(x) if fast else n(x) for n in (plain, fused))
        for k in a:
            if k != "absence_logits":
                assert torch.allclose(a[k], b[k], atol=1e-6), k
        diff = lambda o: o["absence_logits"][..., 1] - o["absence_logits"][..., 0]  # noqa: E731
        assert torch.allclose(diff(a), diff(b), atol=1e-5)


def test_checkpoint_rules():
    plain, fused = _tiny(False), _tiny(True)
    state = fused.state_dict()
    with pytest.raises(CheckpointError, match="unexpected keys.*presence_fusion"):
        load_state_dict_checked(plain, state)  # a fused checkpoint needs a network with the fusion
    partial = {k: v for k, v in state.items() if k != "presence_fusion.bias"}
    with pytest.raises(CheckpointError, match="missing keys.*presence_fusion.bias"):
        load_state_dict_checked(fused, partial)  # part of a fusion is a broken checkpoint, not an old one
    fitted = _tiny(True)
    fitted.presence_fusion.set_fit(torch.ones(3, K), torch.full((3,), 2.0), torch.zeros(K), torch.full((K,), 3.0))
    fused.load_state_dict(fitted.state_dict())
    assert torch.equal(fused.presence_fusion.weight, torch.ones(3, K))
    fused.load_state_dict(plain.state_dict(), strict=True)  # old checkpoint: back to the identity
    assert torch.equal(fused.presence_fusion.weight[:, 0], torch.ones(3)) and fused.presence_fusion.weight[:, 1:].abs().sum() == 0
    assert torch.equal(fused.presence_fusion.evidence_std, torch.ones(K))


def test_set_fit_rejects_bad_shapes_and_scales():
    f = PresenceEvidenceFusion(2)
    with pytest.raises(ValueError, match="shapes"):
        f.set_fit(torch.ones(3, K), torch.zeros(2), torch.zeros(K), torch.ones(K))
    with pytest.raises(ValueError, match="positive, finite"):
        f.set_fit(torch.ones(2, K), torch.zeros(2), torch.zeros(K), torch.zeros(K))
    with pytest.raises(ValueError, match="num_structures"):
        PresenceEvidenceFusion(0)


def test_fused_logit_and_gradient_to_the_head():
    f = PresenceEvidenceFusion(2)
    w = torch.arange(2 * K, dtype=torch.float32).reshape(2, K) / 10
    mean, std = torch.linspace(-1, 1, K), torch.linspace(0.5, 2, K)
    f.set_fit(w, torch.tensor([0.5, -0.5]), mean, std)
    e = torch.randn(3, 2, K)
    e[..., PRESENCE_EVIDENCE_NAMES.index("edge_fraction")] = torch.rand(3, 2)  # a share, so the gate (0) is open
    z = f.fused_logit(e)
    assert torch.allclose(z, ((e - mean) / std * w).sum(-1) + torch.tensor([0.5, -0.5]), atol=1e-6)
    head = torch.randn(3, 2, 2, requires_grad=True)
    e[..., 0] = (head[..., 1] - head[..., 0]).detach()
    out = f(e, head)
    assert torch.allclose(out[..., 1] - out[..., 0], f.fused_logit(e), atol=1e-5)  # same value, now differentiable
    out[..., 1].sum().backward()  # d(z / 2) / d(head present logit) = w[s, 0] / std[0] / 2
    assert torch.allclose(head.grad[..., 1], (w[:, 0] / std[0] / 2).expand(3, 2), atol=1e-6)
    assert not f.weight.requires_grad  # fitted, not trained by back-propagation


def _batches(images: torch.Tensor, targets: torch.Tensor, size: int = 2) -> list[dict]:
    return [{"image": images[i : i + size], "presence_targets": targets[i : i + size]} for i in range(0, len(images), size)]


def test_fit_learns_a_rule_the_evidence_carries_and_the_network_applies_it(tmp_path):
    net = _tiny(True)
    torch.manual_seed(1)
    images = torch.randn(24, 1, 16, 16, 16) * torch.rand(24, 1, 1, 1, 1) * 3
    evidence, _, head = collect_presence_evidence(net, _batches(images, torch.zeros(24, 3)))
    assert evidence.shape == (24, 3, K) and torch.equal(head, evidence[..., 0])
    # "present" when the segmentation paints more than its median soft volume: a rule on one evidence column
    soft = evidence[..., PRESENCE_EVIDENCE_NAMES.index("log_soft_volume")]
    targets = (soft > soft.median(0).values).float()
    report = fit_presence_fusion(
        net, _batches(images[:16], targets[:16]), validation_batches=_batches(images[16:], targets[16:]), l2=0.0, edge_gate=0.0
    )
    assert report["training_cases"] == 16 and report["validation_cases"] == 8
    assert report["training"]["fused"]["accuracy"] == 1.0
    assert report["training"]["fused"]["errors"] == 0 <= report["training"]["head"]["errors"]
    # the forward pass applies the fit: its calls are the fitted logit's signs on every case
    calls = torch.cat([net(b["image"])["presence_calls"] for b in _batches(images, targets)])
    fitted = net.presence_fusion.fused_logit(evidence)
    assert torch.equal(calls, (fitted >= 0).float())
    # same data, same fit
    again = _tiny(True)
    fit_presence_fusion(again, _batches(images[:16], targets[:16]), l2=0.0, edge_gate=0.0)
    assert torch.allclose(again.presence_fusion.weight, net.presence_fusion.weight, atol=1e-5)
    path = save_presence_fusion_fit(net, report, tmp_path / "ckpt")
    state = torch.load(path, weights_only=True)
    assert torch.equal(state["presence_fusion.weight"], net.presence_fusion.weight)
    saved = json.loads((tmp_path / "ckpt" / "presence_fusion.json").read_text())
    assert saved["evidence"] == list(PRESENCE_EVIDENCE_NAMES) and saved["training"]["fused"]["accuracy"] == 1.0


def _separable_evidence(n: int = 40, s: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(n, s, K, generator=g)
    targets = (e[..., 2] + 0.3 * torch.randn(n, s, generator=g) > 0).float()  # log_soft_volume decides, noisily
    return e, targets


def test_regression_weights_select_the_pairs_it_fits():
    e, y = _separable_evidence()
    plain = fit_presence_regression(e, y, l2=1e-2)
    ones = fit_presence_regression(e, y, l2=1e-2, sample_weights=torch.ones(y.shape))
    for a, b in zip(plain, ones):
        assert torch.allclose(a, b, atol=1e-4)
    # the column that decides gets the largest weight, with the target's sign
    assert bool((plain[0].abs().argmax(-1) == 2).all()) and bool((plain[0][:, 2] > 0).all())
    # pairs of weight 0 do not count: flipping their targets leaves the fit as it was
    keep = torch.zeros(y.shape, dtype=torch.bool)
    keep[::2] = True
    flipped = torch.where(keep, y, 1 - y)
    a = fit_presence_regression(e, y, l2=1e-2, sample_weights=keep)
    b = fit_presence_regression(e, flipped, l2=1e-2, sample_weights=keep)
    for u, v in zip(a, b):
        assert torch.allclose(u, v, atol=1e-5)
    assert not torch.allclose(a[0], fit_presence_regression(e, flipped, l2=1e-2)[0], atol=1e-2)
    # the standardisation is over all pairs, whatever their weight
    assert torch.allclose(a[2], e.reshape(-1, K).mean(0), atol=1e-6)
    with pytest.raises(ValueError, match=r"sample_weights of shape \(40, 2\)"):
        fit_presence_regression(e, y, sample_weights=torch.ones(40, 3))
    with pytest.raises(ValueError, match="non-negative sample_weights with a positive sum"):
        fit_presence_regression(e, y, sample_weights=torch.zeros(40, 2))
    with pytest.raises(ValueError, match=r"evidence \[N, S, K\] and targets \[N, S\]"):
        fit_presence_regression(e, y[:, :1])


def test_fit_gated_only_fits_the_pairs_the_gate_lets_through():
    torch.manual_seed(1)
    images = torch.randn(16, 1, 16, 16, 16) * torch.rand(16, 1, 1, 1, 1) * 3
    net = _tiny(True)
    evidence, _, _ = collect_presence_evidence(net, _batches(images, torch.zeros(16, 3)))
    soft = evidence[..., PRESENCE_EVIDENCE_NAMES.index("log_soft_volume")]
    targets = (soft > soft.median(0).values).float()
    # with the gate wide open, every pair is gated: the same fit as the default
    report = fit_presence_fusion(net, _batches(images, targets), l2=1e-2, edge_gate=0.0, fit_gated_only=True)
    assert report["fit_gated_only"] is True
    ref = _tiny(True)
    fit_presence_fusion(ref, _batches(images, targets), l2=1e-2, edge_gate=0.0)
    assert torch.allclose(net.presence_fusion.weight, ref.presence_fusion.weight, atol=1e-4)
    # with a gate, the regression equals fit_presence_regression on the gated pairs only
    edge = evidence[..., PRESENCE_EVIDENCE_NAMES.index("edge_fraction")]
    gate = float(edge.median())
    fit_presence_fusion(net, _batches(images, targets), l2=1e-2, edge_gate=gate, fit_gated_only=True)
    w, b, _, _ = fit_presence_regression(evidence, targets, l2=1e-2, sample_weights=edge >= gate)
    assert torch.allclose(net.presence_fusion.weight, w, atol=1e-4) and torch.allclose(net.presence_fusion.bias, b, atol=1e-4)
    assert float(net.presence_fusion.edge_gate) == pytest.approx(gate)


def test_fit_errors():
    images, targets = torch.randn(2, 1, 16, 16, 16), torch.ones(2, 3)
    with pytest.raises(ValueError, match="presence_fusion=True"):
        fit_presence_fusion(_tiny(False), _batches(images, targets))
    with pytest.raises(ValueError, match="at least one case"):
        fit_presence_fusion(_tiny(True), [])
    with pytest.raises(ValueError, match="keys"):
        fit_presence_fusion(_tiny(True), [{"image": images}])
    with pytest.raises(ValueError, match=r"presence_targets of shape \(2, 3\)"):
        fit_presence_fusion(_tiny(True), _batches(images, torch.ones(2, 5)))
    with pytest.raises(ValueError, match="l2 >= 0"):
        fit_presence_fusion(_tiny(True), _batches(images, targets), l2=-1.0)
    with pytest.raises(ValueError, match="edge_gate in"):
        fit_presence_fusion(_tiny(True), _batches(images, targets), edge_gate=1.5)


def test_edge_gate_keeps_the_head_call_inside_the_volume():
    f = PresenceEvidenceFusion(1)
    f.set_fit(torch.zeros(1, K), torch.tensor([5.0]), torch.zeros(K), torch.ones(K), edge_gate=0.3)  # always "present"
    edge = PRESENCE_EVIDENCE_NAMES.index("edge_fraction")
    e = torch.zeros(4, 1, K)
    e[:, 0, 0] = torch.tensor([-2.0, -2.0, 1.5, -7.0])  # the head's logits
    e[:, 0, edge] = torch.tensor([0.0, 0.29, 0.3, 0.9])
    assert torch.equal(f.fused_logit(e)[:, 0], torch.tensor([-2.0, -2.0, 5.0, 5.0]))
    head = torch.zeros(4, 1, 2, requires_grad=True)
    e[:, 0, 0] = 0.0
    f(e, head)[..., 1].sum().backward()  # the head's logit passes through where the gate is shut, weight 0 where open
    assert torch.equal(head.grad[:, 0, 1], torch.tensor([0.5, 0.5, 0.0, 0.0]))
    with pytest.raises(ValueError, match="edge_gate in"):
        f.set_fit(torch.zeros(1, K), torch.zeros(1), torch.zeros(K), torch.ones(K), edge_gate=-0.1)


def test_boundary_evidence_reads_the_shell_around_the_painted_voxels():
    probs = torch.zeros(1, 1, 8, 8, 8)
    probs[0, 0, 3:5, 3:5, 3:5] = 0.9  # a 2^3 cube; the voxels within 2 of it form a 6^3 block
    image = torch.ones(1, 1, 8, 8, 8)
    image[0, 0, 3:5, 3:5, 3:5] = 3.0
    image[0, 0, 1, 1, 1] = 5.0  # one voxel of the shell
    zeros = torch.zeros(1, 1, 8, 8, 8)
    e = presence_evidence(image, torch.zeros(1, 1, 2), torch.zeros(1, 1), torch.zeros(1, 1), probs, zeros, zeros, zeros)
    got = dict(zip(PRESENCE_EVIDENCE_NAMES, e[0, 0].tolist()))
    n = 6**3 - 8
    ring_mean = 1.0 + 4.0 / n
    ring_std = math.sqrt(((n - 1) * (1.0 - ring_mean) ** 2 + (5.0 - ring_mean) ** 2) / n)
    assert got["boundary_contrast"] == pytest.approx(3.0 - ring_mean, rel=1e-5)
    assert got["boundary_intensity_std"] == pytest.approx(ring_std, rel=1e-5)
    assert got["mean_depth_from_faces"] == pytest.approx(3.0)  # indices 3 and 4 of 0..7
    assert got["overlap_with_other_structures"] == 0.0  # a single structure has no other
    for axis in range(3):
        assert got[f"centroid_axis_{axis}"] == pytest.approx(0.0, abs=1e-6)  # centred: (3.5 / 7) * 2 - 1


def _hidden_fit(s: int = 2, h: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    hidden = (torch.randn(h, K + 2 * s, generator=g), torch.randn(h, generator=g), torch.randn(h, generator=g))
    weight, bias = torch.randn(s, K, generator=g) / 4, torch.randn(s, generator=g)
    mean, std = torch.randn(K, generator=g), torch.rand(K, generator=g) + 0.5
    return weight, bias, mean, std, hidden


def test_hidden_layer_rule_by_hand_and_gradient_to_the_head():
    s, h = 2, 3
    weight, bias, mean, std, hidden = _hidden_fit(s, h)
    f = PresenceEvidenceFusion(s, hidden_channels=h)
    f.set_fit(weight, bias, mean, std, 0.0, hidden)
    e = torch.randn(4, s, K)
    e[..., PRESENCE_EVIDENCE_NAMES.index("edge_fraction")] = torch.rand(4, s)
    u = (e - mean) / std
    soft = PRESENCE_EVIDENCE_NAMES.index("log_soft_volume")
    want = torch.empty(4, s)
    for b in range(4):
        for j in range(s):
            inp = torch.cat([u[b, j], torch.eye(s)[j], u[b, :, soft]])  # own evidence, which structure, all volumes
            want[b, j] = (u[b, j] * weight[j]).sum() + bias[j] + torch.tanh(hidden[0] @ inp + hidden[1]) @ hidden[2]
    assert torch.allclose(f.fused_logit(e), want, atol=1e-5)
    # the head's logit reaches the rule with its gradient: compare with autograd through the formula above
    head = torch.randn(4, s, 2, requires_grad=True)
    e[..., 0] = (head[..., 1] - head[..., 0]).detach()
    f(e, head)[..., 1].sum().backward()
    live = e[..., 0].clone().requires_grad_(True)
    z = f.fused_logit(torch.cat([live[..., None], e[..., 1:]], -1))
    (0.5 * z).sum().backward()
    assert torch.allclose(head.grad[..., 1], live.grad, atol=1e-6)
    # the hidden layer is part of the rule: zero output weights give the plain regression back
    plain = PresenceEvidenceFusion(s)
    plain.set_fit(weight, bias, mean, std)
    f.set_fit(weight, bias, mean, std, 0.0, (hidden[0], hidden[1], torch.zeros(h)))
    assert torch.allclose(f.fused_logit(e), plain.fused_logit(e), atol=1e-6)
    with pytest.raises(ValueError, match="hidden_weight, hidden_bias, output_weight"):
        f.set_fit(weight, bias, mean, std, 0.0, None)
    with pytest.raises(ValueError, match="hidden=None"):
        plain.set_fit(weight, bias, mean, std, 0.0, hidden)
    with pytest.raises(ValueError, match="hidden_channels >= 0"):
        PresenceEvidenceFusion(2, hidden_channels=-1)


def test_checkpoints_from_before_the_wider_evidence_and_hidden_layer_load_as_the_same_rule():
    legacy_k = 12
    w, b = torch.randn(3, legacy_k), torch.randn(3)
    mean, std = torch.randn(legacy_k), torch.rand(legacy_k) + 0.5
    old_state = {k: v for k, v in _tiny(True).state_dict().items() if not k.startswith("presence_fusion.")}
    old_state.update({"presence_fusion.weight": w, "presence_fusion.bias": b, "presence_fusion.evidence_mean": mean,
                      "presence_fusion.evidence_std": std, "presence_fusion.edge_gate": torch.tensor(0.2)})  # fmt: skip
    e = torch.randn(5, 3, K)
    e[..., PRESENCE_EVIDENCE_NAMES.index("edge_fraction")] = torch.rand(5, 3)
    want = torch.where(
        e[..., PRESENCE_EVIDENCE_NAMES.index("edge_fraction")] >= 0.2,
        ((e[..., :legacy_k] - mean) / std * w).sum(-1) + b, e[..., 0],
    )  # fmt: skip
    for hidden in (0, 4):
        net = SpatialAttentionMedicalSegmenter(num_structures=3, presence_fusion=True,
                                               presence_fusion_hidden_channels=hidden, **TINY)  # fmt: skip
        load_state_dict_checked(net, old_state)
        assert torch.allclose(net.presence_fusion.fused_logit(e), want, atol=1e-5)
    # a fusion with a hidden layer needs a network built with one of the same width
    wide = SpatialAttentionMedicalSegmenter(num_structures=3, presence_fusion=True, presence_fusion_hidden_channels=4, **TINY)
    with pytest.raises(CheckpointError, match="unexpected keys.*hidden_weight"):
        load_state_dict_checked(_tiny(True), wide.state_dict())
    narrow = SpatialAttentionMedicalSegmenter(num_structures=3, presence_fusion=True, presence_fusion_hidden_channels=2, **TINY)
    with pytest.raises(CheckpointError, match=r"presence_fusion.hidden_weight: expected \(2, "):
        load_state_dict_checked(narrow, wide.state_dict())


def test_fit_with_a_hidden_layer_learns_what_the_regression_cannot():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(200, 2, K, generator=g) * 0.1
    a, b = PRESENCE_EVIDENCE_NAMES.index("alignment_score"), PRESENCE_EVIDENCE_NAMES.index("confidence_score")
    e[..., a], e[..., b] = torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g)
    e[..., PRESENCE_EVIDENCE_NAMES.index("edge_fraction")] = torch.rand(200, 2, generator=g)  # a share: the gate opens
    y = ((e[..., a] > 0) != (e[..., b] > 0)).float()  # exclusive or of two evidence values: not linearly separable
    linear = PresenceEvidenceFusion(2)
    fit0 = fit_presence_rule(e, y, l2=1e-4, max_iter=300)
    linear.set_fit(fit0["weight"], fit0["bias"], fit0["mean"], fit0["std"], 0.0, fit0["hidden"])
    fit1 = fit_presence_rule(e, y, l2=1e-4, max_iter=500, hidden_channels=8, seed=3)
    deep = PresenceEvidenceFusion(2, hidden_channels=8)
    deep.set_fit(fit1["weight"], fit1["bias"], fit1["mean"], fit1["std"], 0.0, fit1["hidden"])
    accuracy = lambda f: float(((f.fused_logit(e) >= 0).float() == y).float().mean())  # noqa: E731
    assert accuracy(linear) < 0.7 and accuracy(deep) > 0.95
    again = fit_presence_rule(e, y, l2=1e-4, max_iter=500, hidden_channels=8, seed=3)
    assert all(torch.equal(u, v) for u, v in zip(again["hidden"], fit1["hidden"]))  # same data and seed, same fit
    with pytest.raises(ValueError, match="hidden_channels >= 0"):
        fit_presence_rule(e, y, hidden_channels=-1)
    with pytest.raises(ValueError, match=f"expected {K} evidence values for a hidden layer, got 3"):
        fit_presence_rule(e[..., :3], y, hidden_channels=2)
