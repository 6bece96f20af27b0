"""IAM4VP network: the seed-003 torchinfo table at full size, blocks, inputs and errors on small shapes."""

from __future__ import annotations

import math

import pytest
import torch
import torchinfo

from seq_models import IAM4VP
from seq_models.networks.iam4vp import (
    LKA,
    Attention,
    ChannelsFirstLayerNorm,
    ConvNeXt_block,
    ConvNeXt_bottle,
    ConvSC,
    Decoder,
    Encoder,
    SinusoidalPosEmb,
    TimeMLP,
)
from tests.seq_models.small_models import small_iam4vp

# torchinfo 1.8.0 summary printed by the public cloudcasting IAM4VP (seed 003), the specification.
SEED_TABLE = """\
====================================================================================================
Layer (type:depth-idx)                             Output Shape              Param #
====================================================================================================
IAM4VP                                             [1, 11, 372, 614]         11,116,992
├─Encoder: 1-1                                     [12, 64, 93, 154]         --
│    └─Sequential: 2-1                             --                        --
│    │    └─ConvSC: 3-1                            [12, 64, 372, 614]        6,528
│    │    └─ConvSC: 3-2                            [12, 64, 186, 307]        37,056
│    │    └─ConvSC: 3-3                            [12, 64, 186, 307]        37,056
│    │    └─ConvSC: 3-4                            [12, 64, 93, 154]         37,056
├─TimeMLP: 1-2                                     [1, 64]                   --
│    └─SinusoidalPosEmb: 2-2                       [1, 64]                   --
│    └─Linear: 2-3                                 [1, 256]                  16,640
│    └─GELU: 2-4                                   [1, 256]                  --
│    └─Linear: 2-5                                 [1, 64]                   16,448
├─Predictor: 1-3                                   [1, 12, 64, 93, 154]      --
│    └─Sequential: 2-6                             --                        --
│    │    └─ConvNeXt_bottle: 3-5                   [1, 768, 93, 154]         6,031,104
│    │    └─ConvNeXt_block: 3-6                    [1, 768, 93, 154]         5,423,616
│    │    └─ConvNeXt_block: 3-7                    [1, 768, 93, 154]         5,423,616
│    │    └─ConvNeXt_block: 3-8                    [1, 768, 93, 154]         5,423,616
│    │    └─ConvNeXt_block: 3-9                    [1, 768, 93, 154]         5,423,616
│    │    └─ConvNeXt_block: 3-10                   [1, 768, 93, 154]         5,423,616
├─Decoder: 1-4                                     [12, 11, 372, 614]        --
│    └─Sequential: 2-7                             --                        --
│    │    └─ConvSC: 3-11                           [12, 64, 186, 308]        147,840
│    │    └─ConvSC: 3-12                           [12, 64, 186, 308]        37,056
│    │    └─ConvSC: 3-13                           [12, 64, 372, 616]        147,840
│    │    └─ConvSC: 3-14                           [12, 64, 372, 614]        73,920
│    └─Conv2d: 2-8                                 [12, 11, 372, 614]        715
├─SpatioTemporalRefinement: 1-5                    [1, 11, 372, 614]         --
│    └─Attention: 2-9                              [1, 132, 372, 614]        --
│    │    └─Conv2d: 3-15                           [1, 132, 372, 614]        17,556
│    │    └─GELU: 3-16                             [1, 132, 372, 614]        --
│    │    └─LKA: 3-17                              [1, 132, 372, 614]        27,588
│    │    └─Conv2d: 3-18                           [1, 132, 372, 614]        17,556
│    └─Conv2d: 2-10                                [1, 11, 372, 614]         1,463
====================================================================================================
Total params: 44,888,494
Trainable params: 44,888,494
Non-trainable params: 0
Total mult-adds (Units.GIGABYTES): 510.18
====================================================================================================
Input size (MB): 120.60
Forward/backward pass size (MB): 17547.45
Params size (MB): 135.07
Estimated Total Size (MB): 17803.11
===================================================================================================="""

SMALL = (4, 3, 20, 30)


def _nparams(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.slow
def test_seed_table_full_size():
    """The train-mode summary at 1x12x11x372x614, no previous predictions, t=[100] equals the seed row by row.

    Run under no_grad to keep the peak near 5 GB (about 27 s on 2 cores); torchinfo's counts do not depend on it.
    """
    torch.set_num_threads(2)
    model = IAM4VP(shape_in=(12, 11, 372, 614), latent_channels=64, num_convolutions_space=4, num_convolutions_time=6)
    model.train()
    with torch.no_grad():
        stats = torchinfo.summary(
            model, input_data=[torch.rand(1, 12, 11, 372, 614), [], torch.tensor([100])], verbose=0
        )
    assert str(stats).strip().splitlines() == SEED_TABLE.strip().splitlines()
    assert stats.total_params == 44_888_494


def test_block_parameter_counts():
    assert _nparams(ConvSC(11, 64)) == 6_528
    assert _nparams(ConvSC(64, 64, stride=2)) == 37_056
    assert _nparams(ConvSC(64, 64, stride=2, upsample=True)) == 147_840
    assert _nparams(ConvSC(128, 64)) == 73_920
    assert _nparams(ConvNeXt_bottle(768)) == 6_031_104
    assert _nparams(ConvNeXt_block(768)) == 5_423_616
    assert _nparams(LKA(768)) == 648_960
    assert _nparams(LKA(132)) == 27_588
    assert _nparams(Attention(132)) == 17_556 * 2 + 27_588
    assert _nparams(TimeMLP(64)) == 16_640 + 16_448
    # mask token (12, 64, 93, 154) + learned-prior encoder: the root's own count in the seed table
    model = IAM4VP()
    assert model.mask_token.numel() + _nparams(model.lp) == 11_116_992
    assert model.latent_shape == (93, 154)


def test_channels_first_layer_norm_matches_manual_formula():
    norm = ChannelsFirstLayerNorm(5, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 6.0))
        norm.bias.copy_(torch.linspace(-1, 1, 5))
    x = torch.randn(2, 5, 3, 4)
    mean = x.mean(1, keepdim=True)
    var = ((x - mean) ** 2).mean(1, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight[:, None, None] + norm.bias[:, None, None]
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)


def test_sinusoidal_embedding_values():
    emb = SinusoidalPosEmb(8)(torch.tensor([0.0, 2.0]))
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    freqs = [math.exp(-i * math.log(10000) / 3) for i in range(4)]
    expected = [math.sin(2 * f) for f in freqs] + [math.cos(2 * f) for f in freqs]
    torch.testing.assert_close(emb[1], torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_encoder_decoder_shapes_on_odd_sizes():
    enc, dec = Encoder(3, 8, 4), Decoder(8, 3, 4)
    latent, skip = enc(torch.rand(5, 3, 21, 31))
    assert latent.shape == (5, 8, 6, 8) and skip.shape == (5, 8, 21, 31)
    assert dec(latent, skip).shape == (5, 3, 21, 31)
    up = ConvSC(8, 4, stride=2, upsample=True)
    assert up(torch.rand(1, 8, 5, 7)).shape == (1, 4, 10, 14)


def test_lka_is_a_multiplicative_gate():
    lka = LKA(4)
    x = torch.randn(1, 4, 9, 9)
    gate = lka.conv1(lka.conv_spatial(lka.conv0(x)))
    torch.testing.assert_close(lka(x), x * gate)
    assert torch.count_nonzero(lka(torch.zeros(1, 4, 9, 9))) == 0


def _small_model() -> IAM4VP:
    return small_iam4vp(SMALL, latent=8, time_dim=16, gamma=1.0, prior_std=1.0)


def test_forward_shape_previous_predictions_and_time_change_the_output():
    model = _small_model()
    x = torch.rand(2, *SMALL)
    out0 = model(x, [], torch.tensor([0.0, 0.0]))
    assert out0.shape == (2, 3, 20, 30)
    prev = [torch.rand(2, 3, 20, 30)]
    out1 = model(x, prev, torch.tensor([0.0, 0.0]))
    assert not torch.allclose(out0, out1)
    out_t = model(x, [], torch.tensor([300.0, 300.0]))
    assert not torch.allclose(out0, out_t)
    # t=None means 100 * len(previous_predictions); a scalar t is broadcast over the batch
    torch.testing.assert_close(model(x, prev), model(x, prev, torch.tensor([100.0, 100.0])))
    torch.testing.assert_close(model(x, prev, torch.tensor(100.0)), model(x, prev, torch.tensor([100.0, 100.0])))
    # samples are independent: the batch result equals per-sample results
    single = model(x[1:], [p[1:] for p in prev], torch.tensor([100.0]))
    torch.testing.assert_close(model(x, prev)[1:], single, rtol=1e-4, atol=1e-5)


def test_learned_prior_gets_gradients_only_with_previous_predictions():
    model = _small_model().train()
    x = torch.rand(1, *SMALL)
    model(x, [], torch.tensor([0.0])).mean().backward()
    assert all(p.grad is None for p in model.lp.parameters())
    assert model.mask_token.grad is not None and model.mask_token.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    model(x, [torch.rand(1, 3, 20, 30)] * 2, torch.tensor([200.0])).mean().backward()
    assert all(p.grad is not None for p in model.lp.parameters())
    # slots 0 and 1 are replaced by the prior, so the mask token gets no gradient there
    assert model.mask_token.grad[:2].abs().sum() == 0 and model.mask_token.grad[2:].abs().sum() > 0


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 4, 2, 20, 30), "expected 3 channels, got 2"),
        ((1, 3, 3, 20, 30), "expected 4 history steps, got 3"),
        ((1, 5, 3, 20, 30), "expected exactly 4 history steps"),
        ((1, 4, 3, 24, 30), "expected frames of 20x30"),
        ((4, 3, 20, 30), "expected x of shape (B, T, C, H, W)"),
    ],
)
def test_bad_inputs_name_expected_and_got(shape, message):
    model = _small_model()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model(torch.rand(*shape), [], torch.tensor([0.0]))


def test_bad_previous_predictions_and_t():
    model = _small_model()
    x = torch.rand(2, *SMALL)
    with pytest.raises(ValueError, match="at most 4 previous predictions, got 5"):
        model(x, [torch.rand(2, 3, 20, 30)] * 5)
    with pytest.raises(ValueError, match=r"previous prediction 0 of shape \(2, 3, 20, 30\), got \(2, 3, 20, 31\)"):
        model(x, [torch.rand(2, 3, 20, 31)])
    with pytest.raises(ValueError, match=r"expected t of shape \(B,\) = \(2,\)"):
        model(x, [], torch.zeros(3))
    with pytest.raises(ValueError, match="expected shape_in"):
        IAM4VP(shape_in=(12, 11, 372))
