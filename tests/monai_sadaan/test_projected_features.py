"""ProjectedFeatures: convolutions, pooling and BatchNorm on factorised full-resolution features."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_sadaan.networks.blocks.projected_features import (
    ProjectedFeatures,
    batch_norm_channels,
    channel_slices,
    conv_bn_relu_channels,
    count_batch,
)


def _projection(seed: int = 0, low_channels: int = 3, channels: int = 6, bias: bool = True):
    gen = torch.Generator().manual_seed(seed)
    low = torch.randn(2, low_channels, 5, 6, 7, generator=gen)
    conv = nn.Conv3d(low_channels, channels, kernel_size=1, bias=bias)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        if bias:
            conv.bias.copy_(torch.randn(channels, generator=gen) * 3)  # a large bias makes border errors visible
    return low, conv


@pytest.mark.parametrize("bias", [True, False])
def test_convolution_of_the_projection_equals_convolution_of_the_materialised_features(bias):
    low, pointwise = _projection(bias=bias)
    projected = ProjectedFeatures.from_pointwise_conv(low, pointwise)
    features = pointwise(low)
    torch.testing.assert_close(projected.materialise(), features, atol=1e-5, rtol=1e-5)
    gen = torch.Generator().manual_seed(1)
    weight, conv_bias = torch.randn(4, 6, 3, 3, 3, generator=gen), torch.randn(4, generator=gen)
    expected = F.conv3d(features, weight, conv_bias, padding=1)  # zero padding of f, not of low
    got = projected.conv3d(weight, conv_bias, (1, 1, 1))
    assert got.shape == (2, 4, 5, 6, 7)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-5)
    # the border voxels are where a composition that forgets the padded bias goes wrong
    torch.testing.assert_close(got[..., 0, 0, 0], expected[..., 0, 0, 0], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(projected.pooled(), features.mean(dim=(2, 3, 4)), atol=1e-5, rtol=1e-5)


def test_projection_gradients_equal_the_materialised_ones():
    low, pointwise = _projection(seed=3)
    low.requires_grad_(True)
    weight = torch.randn(4, 6, 3, 3, 3, requires_grad=True)
    grads = []
    for path in ("materialised", "projected"):
        for t in (low, weight, pointwise.weight, pointwise.bias):
            t.grad = None
        if path == "materialised":
            out = F.conv3d(pointwise(low), weight, None, padding=1)
        else:
            out = ProjectedFeatures.from_pointwise_conv(low, pointwise).conv3d(weight, None, (1, 1, 1))
        (out.square().mean() + out.mean()).backward()
        grads.append([t.grad.clone() for t in (low, weight, pointwise.weight, pointwise.bias)])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


def test_projection_of_a_non_pointwise_convolution_is_refused():
    low = torch.zeros(1, 3, 4, 4, 4)
    with pytest.raises(ValueError, match="expected a 1x1x1 stride-1 Conv3d over 3 channels"):
        ProjectedFeatures.from_pointwise_conv(low, nn.Conv3d(3, 5, kernel_size=3, padding=1))
    with pytest.raises(ValueError, match="expected a 1x1x1 stride-1 Conv3d over 3 channels"):
        ProjectedFeatures.from_pointwise_conv(low, nn.Conv3d(4, 5, kernel_size=1))
    projected = ProjectedFeatures.from_pointwise_conv(low, nn.Conv3d(3, 5, kernel_size=1))
    with pytest.raises(ValueError, match=r"expected a convolution over 5 feature channels, got weight of shape \(2, 4"):
        projected.compose(torch.zeros(2, 4, 3, 3, 3))


def test_channel_slices_cover_every_channel_once():
    assert channel_slices(8, None) == [slice(0, 8)]
    assert channel_slices(8, 32) == [slice(0, 8)]
    assert channel_slices(8, 3) == [slice(0, 3), slice(3, 6), slice(6, 8)]
    with pytest.raises(ValueError, match="expected a positive channel group size, got 0"):
        channel_slices(8, 0)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_in_channel_groups_equals_the_whole_layer(momentum):
    gen = torch.Generator().manual_seed(2)
    y = torch.randn(2, 5, 3, 4, 4, generator=gen) * 2 + 1
    whole = nn.BatchNorm3d(5, momentum=momentum).train()
    with torch.no_grad():
        whole.weight.copy_(torch.rand(5, generator=gen) + 0.5)
        whole.bias.copy_(torch.randn(5, generator=gen))
    grouped = nn.BatchNorm3d(5, momentum=momentum).train()
    grouped.load_state_dict(whole.state_dict())
    for _ in range(2):  # the second step exercises the cumulative average when momentum is None
        expected = whole(y)
        factor = count_batch(grouped)
        got = torch.cat([batch_norm_channels(y[:, c], grouped, c, factor) for c in channel_slices(5, 2)], dim=1)
        torch.testing.assert_close(got, expected)
        for name, value in whole.state_dict().items():
            torch.testing.assert_close(grouped.state_dict()[name], value, msg=name)
    assert int(grouped.num_batches_tracked) == 2


def test_conv_bn_relu_channels_eval_mode_folds_batchnorm():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 3, 4, 5, 6, generator=gen)
    conv, bn = nn.Conv3d(3, 6, kernel_size=3, padding=1), nn.BatchNorm3d(6)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(6, generator=gen))
        bn.running_var.copy_(torch.rand(6, generator=gen) + 0.5)
        bn.weight.copy_(torch.randn(6, generator=gen))
    block = nn.Sequential(conv, bn, nn.ReLU()).eval()
    with torch.no_grad():
        expected = block(x)
        got = conv_bn_relu_channels(x, conv, bn, slice(2, 5), momentum=None)
    torch.testing.assert_close(got, expected[:, 2:5], atol=1e-5, rtol=1e-5)
