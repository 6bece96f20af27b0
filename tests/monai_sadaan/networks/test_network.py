"""Behaviour of the SADAAn network on tiny configurations (shapes, semantics, errors, equivalent layouts)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from monai_sadaan.networks import (
    SADAAN_OUTPUT_KEYS,
    AbsenceDetectionHead,
    AnatomicalAttentionModule,
    Encoder,
    SADAAnInferenceWrapper,
    SegmentationHead,
    SpatialAttentionMedicalSegmenter,
)
from monai_sadaan.networks import checkpointing
from monai_sadaan.networks.blocks import compose_with_projection

TINY = {"features": (4, 8, 8, 8, 8), "feature_channels": 8, "spatial_size": (16, 16, 32), "num_structures": 3}


def tiny_net(**overrides) -> SpatialAttentionMedicalSegmenter:
    return SpatialAttentionMedicalSegmenter(**{**TINY, **overrides})


def randomise(net: nn.Module, seed: int = 1) -> nn.Module:
    """Re-draw every weight (fan-in scaled), random biases, BatchNorm affine terms and running statistics, and a
    non-trivial position prior, so that no layer is at its identity-like default."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("position_embeddings"):
                p.copy_(torch.randn(p.shape, generator=gen))
            elif p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * (1.5 / p[0].numel()) ** 0.5)
            else:  # biases around 0, BatchNorm scales around 1
                is_bn_scale = name.endswith((".1.weight", ".4.weight")) and "classifiers" not in name
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + float(is_bn_scale))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return net


def tiny_input(batch: int = 2, spatial=(16, 16, 32), channels: int = 1, seed: int = 2) -> torch.Tensor:
    return torch.randn(batch, channels, *spatial, generator=torch.Generator().manual_seed(seed))


def test_output_keys_order_and_shapes():
    net = randomise(tiny_net()).eval()
    with torch.no_grad():
        out = net(tiny_input())
    assert tuple(out) == SADAAN_OUTPUT_KEYS
    assert list(out)[-1] == "segmentation_masks"
    b, s, vol = 2, 3, (16, 16, 32)
    expected = {
        "attention_maps": (b, s, *vol),
        "feature_responses": (b, s, *vol),
        "alignment_scores": (b, s),
        "position_priors": (b, s, *vol),
        "absence_logits": (b, s, 2),
        "presence_probs": (b, s),
        "confidence_scores": (b, s),
        "segmentation_logits": (b, s, *vol),
        "segmentation_probs": (b, s, *vol),
        "presence_calls": (b, s),
        "segmentation_masks": (b, s, *vol),
    }
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    for key in ("attention_maps", "alignment_scores", "presence_probs", "confidence_scores", "segmentation_probs"):
        assert out[key].min() >= 0 and out[key].max() <= 1, key
    assert set(out["presence_calls"].unique().tolist()) <= {0.0, 1.0}
    assert set(out["segmentation_masks"].unique().tolist()) <= {0.0, 1.0}


def test_semantics_match_hand_computation():
    net = randomise(tiny_net()).eval()
    x = tiny_input()
    with torch.no_grad():
        out = net(x, presence_threshold=0.4)
        f = net.encoder(x)
        att = net.attention_module
        prior = torch.sigmoid(att.position_embeddings)
        maps = att.attention_conv(f) * prior
        resp = att.feature_matcher(f)
        align = (maps * torch.sigmoid(resp)).sum((2, 3, 4)) / (maps.sum((2, 3, 4)) + att.eps)
        pooled = f.mean((2, 3, 4))
        classifiers = net.absence_detector.absence_classifiers
        logits = torch.stack([clf(torch.cat([pooled, align[:, i : i + 1]], 1)) for i, clf in enumerate(classifiers)], 1)
        refined = net.segmentation_head.feature_refine(f)
        w = net.segmentation_head.segmentation_layer.weight.flatten(1)  # [S, hidden]
        bias = net.segmentation_head.segmentation_layer.bias
        seg_logits = torch.stack(
            [torch.einsum("c,bcdhw->bdhw", w[i], refined * maps[:, i : i + 1]) + bias[i] for i in range(3)], 1
        )
    torch.testing.assert_close(out["attention_maps"], maps)
    torch.testing.assert_close(out["feature_responses"], resp)
    torch.testing.assert_close(out["alignment_scores"], align)
    torch.testing.assert_close(out["position_priors"], prior.expand(2, -1, -1, -1, -1))
    torch.testing.assert_close(out["absence_logits"], logits)
    torch.testing.assert_close(out["presence_probs"], torch.softmax(logits, -1)[..., 1])
    torch.testing.assert_close(out["confidence_scores"], net.absence_detector.confidence_head(pooled))
    torch.testing.assert_close(out["segmentation_logits"], seg_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["segmentation_probs"], torch.sigmoid(out["segmentation_logits"]))
    calls = (out["presence_probs"] >= 0.4).float()
    torch.testing.assert_close(out["presence_calls"], calls)
    masks = (out["segmentation_probs"] > 0.5).float() * calls[:, :, None, None, None]
    torch.testing.assert_close(out["segmentation_masks"], masks)


@pytest.mark.parametrize("seed", [1, 7])
def test_literal_and_efficient_heads_give_the_same_logits(seed):
    efficient = randomise(tiny_net(memory_efficient_head=True), seed=seed).eval()
    literal = tiny_net(memory_efficient_head=False).eval()
    literal.load_state_dict(efficient.state_dict())
    assert literal.segmentation_head.memory_efficient is False
    x = tiny_input(seed=seed)
    with torch.no_grad():
        a, b = efficient(x), literal(x)
    assert (a["segmentation_logits"] - b["segmentation_logits"]).abs().max() <= 1e-5
    assert a["segmentation_logits"].abs().max() > 0.1  # a non-trivial comparison
    for key in SADAAN_OUTPUT_KEYS:
        if key not in ("segmentation_logits", "segmentation_probs", "segmentation_masks"):
            assert torch.equal(a[key], b[key]), key


def test_literal_and_efficient_heads_give_the_same_gradients():
    efficient = randomise(tiny_net(memory_efficient_head=True), seed=3).train()
    literal = tiny_net(memory_efficient_head=False).train()
    literal.load_state_dict(efficient.state_dict())
    x = tiny_input(seed=3)
    for net in (efficient, literal):
        torch.manual_seed(0)
        net(x)["segmentation_logits"].square().mean().backward()
    for (name, p), q in zip(efficient.named_parameters(), literal.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_absent_structures_have_empty_masks():
    net = randomise(tiny_net()).eval()
    with torch.no_grad():
        # structure 1: drive its classifier to "absent" whatever the input (logits (+20, -20))
        last = net.absence_detector.absence_classifiers[1][-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([20.0, -20.0]))
        # structure 2: certainly present
        last = net.absence_detector.absence_classifiers[2][-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([-20.0, 20.0]))
        # make every voxel of every structure a confident foreground voxel
        net.segmentation_head.segmentation_layer.weight.zero_()
        net.segmentation_head.segmentation_layer.bias.fill_(5.0)
        out = net(tiny_input())
    assert out["presence_calls"][:, 1].eq(0).all() and out["presence_calls"][:, 2].eq(1).all()
    assert out["segmentation_probs"][:, 1].min() > 0.99  # the probability map itself is untouched
    assert out["segmentation_masks"][:, 1].sum() == 0
    assert out["segmentation_masks"][:, 2].eq(1).all()
    with torch.no_grad():
        strict = net(tiny_input(), presence_threshold=1.0)
    # only a probability of exactly 1.0 (structure 2, saturated softmax) passes a threshold of 1.0
    assert strict["presence_probs"][:, :2].max() < 1.0
    assert strict["presence_calls"].tolist() == [[0.0, 0.0, 1.0]] * 2
    assert strict["segmentation_masks"][:, :2].sum() == 0 and strict["segmentation_masks"][:, 2].eq(1).all()


@pytest.mark.parametrize(
    "shape, fragment",
    [
        ((2, 16, 16, 32), "got (2, 16, 16, 32)"),
        ((2, 2, 16, 16, 32), "got (2, 2, 16, 16, 32)"),
        ((2, 1, 16, 16, 16), "got (2, 1, 16, 16, 16)"),
        ((2, 1, 32, 16, 16), "got (2, 1, 32, 16, 16)"),
    ],
)
def test_wrong_input_shape_names_expected_and_got(shape, fragment):
    net = tiny_net()
    with pytest.raises(ValueError) as err:
        net(torch.zeros(shape))
    assert "expected input of shape (B, 1, 16, 16, 32)" in str(err.value) and fragment in str(err.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_is_rejected(bad):
    x = tiny_input()
    x[1, 0, 3, 4, 5] = bad
    with pytest.raises(ValueError, match=r"expected finite input values, got 1 NaN/Inf"):
        tiny_net()(x)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="expected a floating point input"):
        tiny_net()(torch.zeros(1, 1, 16, 16, 32, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"presence_threshold in \[0, 1\], got 1.5"):
        tiny_net()(tiny_input(), presence_threshold=1.5)
    for dims in [(16, 16, 24), (8, 16, 16), (16, 16), (0, 16, 16)]:
        with pytest.raises(ValueError, match=r"multiple of 16, got"):
            SpatialAttentionMedicalSegmenter(spatial_size=dims)
    with pytest.raises(ValueError, match="five positive encoder widths"):
        SpatialAttentionMedicalSegmenter(features=(16, 32, 64, 128))
    with pytest.raises(ValueError, match="dropout"):
        AbsenceDetectionHead(dropout=1.0)
    single = SpatialAttentionMedicalSegmenter(spatial_size=(16, 16, 16), features=(2, 2, 2, 2, 2), feature_channels=2)
    with pytest.raises(ValueError, match="got batch size 1 at spatial size"):
        single.train()(torch.zeros(1, 1, 16, 16, 16))
    assert single.eval()(torch.zeros(1, 1, 16, 16, 16))["segmentation_masks"].shape == (1, 5, 16, 16, 16)


def test_seed_alias_spatial_dims_builds_the_same_network():
    """Seed 002 passes the (D, H, W) size as ``spatial_dims``: the same network as ``spatial_size``."""
    rest = {k: v for k, v in TINY.items() if k != "spatial_size"}
    torch.manual_seed(3)
    by_size = SpatialAttentionMedicalSegmenter(**rest, spatial_size=(16, 16, 32)).eval()
    torch.manual_seed(3)
    by_alias = SpatialAttentionMedicalSegmenter(**rest, spatial_dims=(16, 16, 32)).eval()
    torch.manual_seed(3)
    by_both = SpatialAttentionMedicalSegmenter(**rest, spatial_size=[16, 16, 32], spatial_dims=(16, 16, 32)).eval()
    assert by_size.spatial_size == by_alias.spatial_size == by_both.spatial_size == (16, 16, 32)
    reference = by_size.state_dict()
    for net in (by_alias, by_both):
        state = net.state_dict()
        assert list(state) == list(reference)
        assert all(state[k].shape == reference[k].shape and torch.equal(state[k], reference[k]) for k in reference)
    with torch.no_grad():
        expected = by_size(tiny_input())
        for net in (by_alias, by_both):
            got = net(tiny_input())
            assert all(torch.equal(got[k], expected[k]) for k in SADAAN_OUTPUT_KEYS)


def test_seed_config_and_default_give_the_seed_size():
    seed_config = {"in_channels": 1, "num_structures": 5, "spatial_dims": (64, 64, 64)}  # seed 002's example
    seed_net, default_net = SpatialAttentionMedicalSegmenter(**seed_config), SpatialAttentionMedicalSegmenter()
    assert seed_net.spatial_size == default_net.spatial_size == (64, 64, 64)
    assert sum(p.numel() for p in seed_net.parameters()) == 8_019_230


def test_spatial_size_and_alias_disagreeing_is_refused():
    with pytest.raises(ValueError, match=r"got spatial_size=\(16, 16, 32\) and spatial_dims=\(32, 16, 16\)"):
        tiny_net(spatial_dims=(32, 16, 16))


def test_anisotropic_multichannel_single_structure():
    net = SpatialAttentionMedicalSegmenter(
        in_channels=2, num_structures=1, spatial_size=(16, 32, 48), features=(2, 4, 4, 4, 4), feature_channels=4
    ).eval()
    assert net.attention_module.position_embeddings.shape == (1, 1, 16, 32, 48)
    with torch.no_grad():
        out = net(tiny_input(batch=1, spatial=(16, 32, 48), channels=2))
    assert out["segmentation_masks"].shape == (1, 1, 16, 32, 48)
    assert out["absence_logits"].shape == (1, 1, 2)
    with pytest.raises(ValueError, match=r"expected input of shape \(B, 2, 16, 32, 48\), got \(1, 2, 48, 32, 16\)"):
        net(torch.zeros(1, 2, 48, 32, 16))


def test_blocks_standalone_and_widths():
    enc = Encoder(in_channels=1, features=(2, 3, 4, 5, 6), feature_channels=7).eval()
    image = torch.randn(1, 1, 16, 16, 16)
    assert enc(image).shape == (1, 7, 16, 16, 16)
    with torch.no_grad():  # the map before the 1x1x1 projection, as the checkpointed graph reads it
        narrow = enc.narrow_features(image)
        assert narrow.shape == (1, 2, 16, 16, 16)
        assert torch.equal(enc(image), enc.final_conv(narrow))
        # a convolution of the feature map is one of [narrow, 1] with composed weights, borders included
        low = torch.cat([narrow, torch.ones_like(narrow[:, :1])], dim=1)
        assert enc.projection().shape == (7, 3)
        conv = nn.Conv3d(7, 3, kernel_size=3, padding=1)
        composed = nn.functional.conv3d(low, compose_with_projection(conv.weight, enc.projection()), conv.bias, padding=1)
        torch.testing.assert_close(composed, conv(enc(image)))
        torch.testing.assert_close(low.mean(dim=(2, 3, 4)) @ enc.projection().t(), enc(image).mean(dim=(2, 3, 4)))
    assert enc.dec4[0].in_channels == 10 and enc.up1.out_channels == 2
    att = AnatomicalAttentionModule(in_channels=7, num_structures=2, spatial_size=(16, 16, 16), hidden_channels=3)
    maps, resp, align, prior = att(torch.randn(2, 7, 16, 16, 16))
    assert maps.shape == resp.shape == prior.shape == (2, 2, 16, 16, 16) and align.shape == (2, 2)
    head = AbsenceDetectionHead(num_structures=2, feature_dim=7)
    assert head.absence_classifiers[0][0].in_features == 8
    probs, logits, conf = head(torch.randn(2, 7, 4, 4, 4), align)
    assert probs.shape == conf.shape == (2, 2) and logits.shape == (2, 2, 2)
    seg = SegmentationHead(in_channels=7, num_structures=2, hidden_channels=3)
    seg_logits, seg_probs = seg(torch.randn(2, 7, 16, 16, 16), maps)
    assert seg_logits.shape == seg_probs.shape == (2, 2, 16, 16, 16)


def test_gradients_reach_every_parameter():
    net = randomise(tiny_net()).train()
    out = net(tiny_input())
    loss = sum(out[k].float().mean() for k in SADAAN_OUTPUT_KEYS[:9])
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def _bn_state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}


@pytest.mark.parametrize("channel_group", [32, 3])
@pytest.mark.parametrize("memory_efficient_head", [True, False])
def test_use_checkpoint_is_exact(memory_efficient_head, channel_group, monkeypatch):
    """Checkpointed segments (hidden layers whole, or in uneven groups of 3 channels: 8 -> 3 + 3 + 2, 4 -> 3 + 1)
    give the plain graph's outputs, gradients and BatchNorm statistics, each BatchNorm counting the batch once."""
    monkeypatch.setattr(checkpointing, "CHANNEL_GROUP", channel_group)
    plain = randomise(tiny_net(memory_efficient_head=memory_efficient_head), seed=5).train()
    ckpt = tiny_net(memory_efficient_head=memory_efficient_head, use_checkpoint="true").train()
    ckpt.load_state_dict(plain.state_dict())
    assert ckpt.use_checkpoint is True and plain.use_checkpoint is False
    x = tiny_input(seed=5)
    results = []
    for net in (plain, ckpt):
        torch.manual_seed(11)  # same dropout masks
        out = net(x)
        loss = out["segmentation_logits"].square().mean() + out["absence_logits"].square().mean()
        loss = loss + out["alignment_scores"].mean() + out["confidence_scores"].mean()
        loss.backward()
        results.append((out, {n: p.grad.clone() for n, p in net.named_parameters()}, _bn_state(net)))
    (out_a, grad_a, bn_a), (out_b, grad_b, bn_b) = results
    # the same layers on the same inputs, recomputed in backward: the same numbers up to float rounding
    for key in SADAAN_OUTPUT_KEYS[:9]:
        torch.testing.assert_close(out_b[key], out_a[key], atol=2e-5, rtol=1e-4, msg=key)
    assert out_a["feature_responses"].abs().max() > 0.5  # a non-trivial comparison
    for name in grad_a:
        assert grad_b[name].abs().sum() > 0 or grad_a[name].abs().sum() == 0, name
        torch.testing.assert_close(grad_b[name], grad_a[name], atol=2e-5, rtol=1e-4, msg=name)
    # running statistics are updated once per step, not a second time by the recomputation
    for name in bn_a:
        if name.endswith("num_batches_tracked"):
            assert torch.equal(bn_a[name], bn_b[name]), name
        else:
            torch.testing.assert_close(bn_b[name], bn_a[name], atol=1e-5, rtol=1e-4, msg=name)
    counts = {name: int(value) for name, value in bn_b.items() if name.endswith("num_batches_tracked")}
    assert len(counts) == 22 and set(counts.values()) == {1}, counts  # 18 encoder, 2 attention, 2 head
    assert int(bn_b["encoder.enc1.1.num_batches_tracked"]) == 1
    assert int(bn_b["attention_module.feature_matcher.1.num_batches_tracked"]) == 1
    assert int(bn_b["segmentation_head.feature_refine.4.num_batches_tracked"]) == 1


def test_use_checkpoint_saves_only_segment_inputs():
    """The stages run in checkpointed segments: backward keeps far fewer tensors than the plain graph, and none
    with the feature map's width at full resolution (the segments that read the map recompute it)."""
    plain = randomise(tiny_net(), seed=5).train()
    ckpt = tiny_net(use_checkpoint=True).train()
    ckpt.load_state_dict(plain.state_dict())
    counts, widths = [], []
    for net in (plain, ckpt):
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            out = net(tiny_input(seed=5))
        out["segmentation_logits"].sum().backward()
        counts.append(sum(t.numel() for t in saved))
        widths.append(max(t.shape[1] for t in saved if t.ndim == 5 and tuple(t.shape[2:]) == TINY["spatial_size"]))
    assert counts[1] < 0.5 * counts[0], counts
    assert widths[0] == TINY["feature_channels"]  # the plain graph keeps the feature map
    # the checkpointed graph: segment inputs (the narrow map before final_conv with its channel of ones, the refined
    # features' first layer) and per-structure maps, never the feature map
    assert widths[1] == max(TINY["features"][0] + 1, TINY["feature_channels"] // 2, TINY["num_structures"]), widths


def test_checkpointing_is_skipped_without_grad():
    net = randomise(tiny_net(use_checkpoint=True)).eval()
    ref = tiny_net(use_checkpoint=False).eval()
    ref.load_state_dict(net.state_dict())
    with torch.no_grad():
        a, b = net(tiny_input()), ref(tiny_input())
    for key in SADAAN_OUTPUT_KEYS:
        assert torch.equal(a[key], b[key]), key


def test_inference_wrapper_trace_matches_eager():
    net = randomise(tiny_net()).eval()
    wrapper = SADAAnInferenceWrapper(net).eval()
    x = tiny_input()
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, x, check_trace=False)
        eager = net(x)
        other = tiny_input(seed=9)
        eager_other = net(other)
        got, got_other = traced(x), traced(other)
    assert isinstance(got, tuple) and len(got) == 3
    for tensors, ref in ((got, eager), (got_other, eager_other)):
        torch.testing.assert_close(tensors[0], ref["segmentation_probs"])
        torch.testing.assert_close(tensors[1], ref["presence_probs"])
        torch.testing.assert_close(tensors[2], ref["confidence_scores"])
    with pytest.raises(ValueError, match="expected input of shape"):
        wrapper(torch.zeros(1, 1, 16, 16, 16))


def test_inference_wrapper_passes_monai_torchscript_verification(tmp_path):
    from monai.networks.utils import convert_to_torchscript

    wrapper = SADAAnInferenceWrapper(randomise(tiny_net())).eval()
    x = tiny_input(batch=1)
    scripted = convert_to_torchscript(
        wrapper, str(tmp_path / "sadaan.ts"), verify=True, inputs=[x], use_trace=True, rtol=1e-5, atol=1e-6
    )
    loaded = torch.jit.load(str(tmp_path / "sadaan.ts"))
    with torch.no_grad():
        for got, want in zip(loaded(x), wrapper(x)):
            torch.testing.assert_close(got, want)
    assert scripted is not None
