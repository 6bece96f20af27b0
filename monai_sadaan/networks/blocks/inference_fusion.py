"""Inference-time rewrites of SADAAn layers that give the same numbers with less work.

In eval mode a ``BatchNorm3d`` is an affine map per channel with fixed coefficients, so it can be folded into
the convolution in front of it: ``bn(conv(x)) = conv'(x)`` with ``w' = w * g / sqrt(v + eps)`` and
``b' = (b - m) * g / sqrt(v + eps) + beta``. Removing the separate normalisation pass matters at full
resolution, where each BatchNorm + ReLU reads and writes hundreds of megabytes.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["fold_conv_bn", "conv3d_same", "run_folded_double_conv", "run_folded_conv_bn_relu"]


def conv3d_same(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding) -> torch.Tensor:
    """A stride-1 ``F.conv3d`` that always takes the oneDNN (MKLDNN) kernel for float32 CPU tensors.

    PyTorch sends a batch-1 convolution whose ``C * D * H`` is at most 20480 to its slow im2col kernel; at
    1 x 1 x 64^3 that is most of the SADAAn encoder below full resolution. The oneDNN kernel computes the same
    convolution several times faster. Other devices and dtypes go through ``F.conv3d``.

    Args:
        x: ``[B, C_in, D, H, W]``.
        weight: ``[C_out, C_in, k, k, k]``.
        bias: ``[C_out]`` or None.
        padding: per-dimension padding (tuple of three ints).

    Returns:
        ``[B, C_out, D', H', W']``.
    """
    if (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
    ):
        return torch.ops.aten.mkldnn_convolution(x, weight, bias, list(padding), [1, 1, 1], [1, 1, 1], 1)
    return F.conv3d(x, weight, bias, padding=padding)


def fold_conv_bn(conv: nn.Conv3d, bn: nn.BatchNorm3d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of one convolution equal to ``bn(conv(x))`` with ``bn`` in eval mode.

    Args:
        conv: a ``Conv3d`` (any kernel, groups 1).
        bn: the ``BatchNorm3d`` that follows it, with running statistics.

    Returns:
        ``(weight [C_out, C_in, k, k, k], bias [C_out])``, differentiable with respect to the originals.

    Raises:
        ValueError: if ``bn`` keeps no running statistics (it then normalises with batch statistics).
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"expected a BatchNorm with running statistics to fold into {conv}, got {bn}")
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    bias = (bias - bn.running_mean) * scale
    if bn.bias is not None:
        bias = bias + bn.bias
    weight = conv.weight * scale.reshape(-1, *([1] * (conv.weight.ndim - 1)))
    return weight, bias


def run_folded_conv_bn_relu(x: torch.Tensor, conv: nn.Conv3d, bn: nn.BatchNorm3d) -> torch.Tensor:
    """``relu(bn(conv(x)))`` as one convolution and an in-place ReLU (``bn`` in eval mode).

    Args:
        x: ``[B, C_in, D, H, W]``.
        conv: the convolution (stride 1).
        bn: the BatchNorm after it.

    Returns:
        ``[B, C_out, D, H, W]``.
    """
    weight, bias = fold_conv_bn(conv, bn)
    return conv3d_same(x, weight, bias, conv.padding).relu_()


def run_folded_double_conv(x: torch.Tensor, block: nn.Sequential) -> torch.Tensor:
    """Run a ``Conv3d, BatchNorm3d, ReLU, Conv3d, BatchNorm3d, ReLU`` block with both BatchNorms folded.

    Args:
        x: ``[B, C_in, D, H, W]``.
        block: the six-layer block (see :func:`~monai_sadaan.networks.blocks.double_conv.double_conv3d`).

    Returns:
        ``[B, C_out, D, H, W]``, equal to ``block(x)`` in eval mode up to float rounding.
    """
    x = run_folded_conv_bn_relu(x, block[0], block[1])
    return run_folded_conv_bn_relu(x, block[3], block[4])
