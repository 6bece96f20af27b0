"""Presence calls and the rule that empties what a structure judged absent would otherwise show.

One home for the rule, used by the network, the whole-volume inferer, the label-map post-processing and the
presence report: a structure is present when its presence probability is at or above the threshold (or when
an explicit call says so, ``> 0.5``), and everything of an absent structure (mask, probability) is zero.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["call_presence", "gate_by_presence", "is_called_present", "presence_masks"]


def _tensor(x: Any, device: torch.device | None = None) -> torch.Tensor:
    """``x`` as a tensor; a tensor is passed through (moved to ``device`` when given), so traces keep its data flow."""
    if isinstance(x, torch.Tensor):
        return x if device is None else x.to(device)
    return torch.as_tensor(x, device=device)


def is_called_present(calls: Any, device: torch.device | None = None) -> torch.Tensor:
    """``[..., S]`` bool: where a 0/1 presence call (or a probability used as one) says present, ``calls > 0.5``.

    The one reading of a call that every consumer (mask gating, label maps, writers) shares.
    """
    return _tensor(calls, device) > 0.5


def call_presence(presence_probs: Any, threshold: float = 0.5, calls: Any = None) -> torch.Tensor:
    """Presence calls as float 0/1: ``calls > 0.5`` where calls are given, else ``presence_probs >= threshold``.

    Args:
        presence_probs: ``[..., S]`` P(present), a tensor or array.
        threshold: probability at or above which a structure is called present.
        calls: optional ``[..., S]`` calls already made (1 present, 0 absent); they take precedence.

    Returns:
        ``[..., S]`` float 0/1 tensor, the dtype of ``presence_probs`` when it is floating point (float32 otherwise).
    """
    probs = _tensor(presence_probs)
    dtype = probs.dtype if probs.is_floating_point() else torch.float32
    if calls is not None:
        return is_called_present(calls, probs.device).to(dtype)
    return (probs >= threshold).to(dtype)


def gate_by_presence(values: torch.Tensor, calls: Any) -> torch.Tensor:
    """``values`` with every structure called absent set to zero.

    Args:
        values: ``[..., S, D, H, W]`` per-structure maps (masks or probabilities).
        calls: ``[..., S]`` presence calls (``> 0.5``: present), the leading dimensions of ``values``.

    Returns:
        ``values * present`` broadcast over the spatial dimensions, ``values``' dtype and shape.

    Raises:
        ValueError: if ``calls`` does not match the leading dimensions of ``values``.
    """
    lead = values.shape[:-3]
    present = is_called_present(calls, values.device)
    if not torch.jit.is_tracing() and (values.ndim < 4 or present.numel() != lead.numel()):
        raise ValueError(
            f"expected maps [..., S, D, H, W] and one presence call per structure, got maps of shape "
            f"{tuple(values.shape)} and {present.numel()} calls"
        )
    present = present.reshape(*lead, 1, 1, 1)
    return values * present.to(values.dtype)


def presence_masks(segmentation_probs: torch.Tensor, calls: Any, mask_threshold: float = 0.5) -> torch.Tensor:
    """Binary masks ``segmentation_probs > mask_threshold`` (float 0/1), all zero for structures called absent.

    Args:
        segmentation_probs: ``[..., S, D, H, W]``.
        calls: ``[..., S]`` presence calls (``> 0.5``: present).
        mask_threshold: probability a voxel must exceed.

    Returns:
        ``[..., S, D, H, W]`` masks in the dtype of ``segmentation_probs``.
    """
    masks = (segmentation_probs > mask_threshold).to(segmentation_probs.dtype)
    return gate_by_presence(masks, calls)
