"""build_fast_inference: the eval-only graph (BatchNorm folded, factorised features) equals the plain model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

from monai_sadaan.networks import (
    SADAAN_OUTPUT_KEYS,
    FastSADAAnInference,
    SADAAnInferenceWrapper,
    SpatialAttentionMedicalSegmenter,
    build_fast_inference,
)
from monai_sadaan.networks.blocks import double_conv3d
from monai_sadaan.networks.fast_inference import attach_fast_inference, fold_double_conv

from .test_network import randomise, tiny_input, tiny_net

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "sadaan_abdominal_ct_segmentation"


def _assert_outputs_close(got: dict, want: dict) -> None:
    assert tuple(got) == SADAAN_OUTPUT_KEYS
    for key in SADAAN_OUTPUT_KEYS:
        assert got[key].shape == want[key].shape, key
        # float32 rounding of the folded graph grows with the outputs' size (CPU kernels sum in different orders)
        atol = max(2e-5, 4e-6 * float(want[key].abs().max()))
        torch.testing.assert_close(got[key], want[key], atol=atol, rtol=1e-4, msg=key)


@pytest.mark.parametrize("memory_efficient_head", [True, False])
def test_fast_inference_matches_plain_eval(memory_efficient_head):
    plain = randomise(tiny_net(memory_efficient_head=memory_efficient_head), seed=4).eval()
    fast = build_fast_inference(plain)
    x = tiny_input(seed=4)
    with torch.no_grad():
        threshold = float(plain(x)["presence_probs"].flatten().sort().values[2])  # between the calls
        want = plain(x, presence_threshold=threshold)
    got = fast(x, presence_threshold=threshold)
    _assert_outputs_close(got, want)
    assert want["feature_responses"].abs().max() > 1.0  # a non-trivial comparison
    assert 0 < want["presence_calls"].sum() < want["presence_calls"].numel()  # both calls occur


def test_factorised_features_are_exact_on_the_border():
    """A large bias of final_conv reaches the head convolutions only from inside the volume (zero padding)."""
    plain = randomise(tiny_net(), seed=8).eval()
    with torch.no_grad():
        plain.encoder.final_conv.bias.mul_(20)
    x = tiny_input(seed=8)
    with torch.no_grad():
        want = plain(x)
    got = build_fast_inference(plain)(x)
    for key in ("feature_responses", "attention_maps", "segmentation_logits"):
        border = torch.ones_like(want[key], dtype=torch.bool)
        border[..., 1:-1, 1:-1, 1:-1] = False
        scale = want[key].abs().max()
        torch.testing.assert_close(got[key][border], want[key][border], atol=2e-5 * scale, rtol=1e-4, msg=key)


def test_fast_inference_with_presence_fusion_and_batchnorm_statistics():
    plain = randomise(tiny_net(presence_fusion=True, presence_fusion_hidden_channels=4), seed=2)
    plain.train()
    with torch.no_grad():  # running statistics moved by real batches, then the fusion given a non-identity rule
        plain(tiny_input(seed=3) * 3 + 1)
        fusion = plain.presence_fusion
        gen = torch.Generator().manual_seed(0)
        for p in fusion.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    plain.eval()
    x = tiny_input(seed=2)
    with torch.no_grad():
        want = plain(x)
    _assert_outputs_close(build_fast_inference(plain)(x), want)


def test_the_model_is_left_alone_and_the_graph_is_eval_only():
    plain = randomise(tiny_net(), seed=1).train()
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    fast = build_fast_inference(plain)
    assert plain.training and all(torch.equal(v, before[k]) for k, v in plain.state_dict().items())
    assert isinstance(fast, FastSADAAnInference) and not fast.training
    assert not any(p.requires_grad for p in fast.parameters())
    assert fast.spatial_size == plain.spatial_size and fast.num_structures == plain.num_structures
    with pytest.raises(ValueError, match="eval-only"):
        fast.train()
    fast.eval()
    with pytest.raises(ValueError, match="expected input of shape"):
        fast(torch.zeros(1, 1, 16, 16, 16))
    with torch.no_grad():  # later changes to the model do not reach the graph
        plain.segmentation_head.segmentation_layer.bias.add_(1.0)
    assert not torch.equal(fast.segmentation_layer.bias, plain.segmentation_head.segmentation_layer.bias)
    with pytest.raises(TypeError, match="SpatialAttentionMedicalSegmenter"):
        build_fast_inference(nn.Linear(2, 2))


def test_fold_double_conv_matches_eval_block():
    block = randomise(nn.Sequential(double_conv3d(3, 4)), seed=8)[0].eval()
    x = torch.randn(2, 3, 5, 6, 7)
    folded = fold_double_conv(block)
    assert [type(m) for m in folded] == [nn.Conv3d, nn.ReLU, nn.Conv3d, nn.ReLU]
    with torch.no_grad():
        torch.testing.assert_close(folded(x), block(x), atol=1e-5, rtol=1e-5)


def test_trace_of_the_fast_graph_matches_the_plain_model():
    plain = randomise(tiny_net(), seed=6).eval()
    x = tiny_input(seed=6)
    with torch.no_grad():
        traced = torch.jit.trace(SADAAnInferenceWrapper(build_fast_inference(plain)).eval(), x, check_trace=False)
        got, want = traced(x), plain(x)
    for tensor, key in zip(got, ("segmentation_probs", "presence_probs", "confidence_scores")):
        torch.testing.assert_close(tensor, want[key], atol=2e-5, rtol=1e-4)


def test_attach_fast_inference_builds_the_graph_when_the_engine_starts():
    from ignite.engine import Engine, Events

    plain = randomise(tiny_net(), seed=3).eval()
    seen = []
    engine = Engine(lambda e, batch: seen.append(type(e.network).__name__))
    engine.network = plain
    loaded = randomise(tiny_net(), seed=9).state_dict()
    engine.add_event_handler(Events.STARTED, lambda e: plain.load_state_dict(loaded))  # the checkpoint loader
    attach_fast_inference(engine, fast_inference="false")
    engine.run([0], max_epochs=1)
    assert seen == ["SpatialAttentionMedicalSegmenter"]
    attach_fast_inference(engine, fast_inference=True)
    engine.run([0], max_epochs=1)
    assert seen[-1] == "FastSADAAnInference"
    x = tiny_input(seed=3)
    with torch.no_grad():  # built from the weights loaded at start, not the ones the model had before
        _assert_outputs_close(engine.network(x), plain(x))
    with pytest.raises(ValueError, match="fast_inference"):
        attach_fast_inference(engine, "ja")


# outputs of the shipped checkpoint (bundle 0.13.0) on torch.randn(2, 1, 48, 48, 48) (generator seed 0), BatchNorm with
# running statistics (the network's own eval mode, which the fast graph folds): per-structure means over space,
# case 0 then case 1; recorded when the checkpoint was committed, so a change of the network's code shows here
SHIPPED_SEGMENTATION_LOGITS_MEAN = [
    [-10.324479, -10.144513, -7.561449, -10.177961, -10.493647],
    [-10.324450, -10.144420, -7.562033, -10.179430, -10.493382],
]
SHIPPED_FEATURE_RESPONSES_MEAN = [
    [-51.522526, -27.496037, -17.232426, -36.866329, -30.207199],
    [-51.667580, -27.508562, -17.215330, -36.941757, -30.255417],
]
SHIPPED_PRESENCE_LOGIT = [
    [-9.225678, -8.582898, -7.101073, -9.256165, -12.572729],
    [-9.223635, -8.499728, -7.122901, -9.144375, -12.583412],
]
SHIPPED_CONFIDENCE = [
    [0.543945, 0.319278, 0.226683, 0.446806, 0.317835],
    [0.541509, 0.318071, 0.225816, 0.445097, 0.317499],
]


@pytest.mark.skipif(not (BUNDLE / "models" / "model.pt").is_file(), reason="shipped checkpoint not present")
def test_shipped_checkpoint_loads_strictly_and_gives_the_recorded_outputs():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.json"))
    net = parser.get_parsed_content("network_def")
    assert isinstance(net, SpatialAttentionMedicalSegmenter)
    state = torch.load(BUNDLE / "models" / "model.pt", map_location="cpu", weights_only=True)
    state = state.get("model", state)
    assert set(state) == set(net.state_dict())
    assert any(k.startswith("presence_fusion.") for k in state)
    net.load_state_dict(state, strict=True)
    net.eval()
    x = torch.randn(2, 1, 48, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = net(x)
    fast = build_fast_inference(net)(x)
    for out, tol in ((plain, 1e-5), (fast, 1e-4)):
        logit = out["absence_logits"][..., 1] - out["absence_logits"][..., 0]
        for got, want in (
            (out["segmentation_logits"].mean(dim=(2, 3, 4)), SHIPPED_SEGMENTATION_LOGITS_MEAN),
            (out["feature_responses"].mean(dim=(2, 3, 4)), SHIPPED_FEATURE_RESPONSES_MEAN),
            (logit, SHIPPED_PRESENCE_LOGIT),
            (out["confidence_scores"], SHIPPED_CONFIDENCE),
        ):
            torch.testing.assert_close(got, torch.tensor(want), atol=tol * 10, rtol=tol)
    _assert_outputs_close(fast, plain)
