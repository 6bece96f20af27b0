"""Checks shared by the SADAAn transforms: the shapes they take and the structure table they are given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import NdarrayOrTensor

__all__ = ["check_label_map", "check_volume", "structure_label_values", "shape_of", "spatial_size_3d"]


def shape_of(x: Any) -> tuple[int, ...]:
    """``x.shape`` as a tuple of Python ints (for messages and comparisons across numpy and torch)."""
    return tuple(int(s) for s in x.shape)


def spatial_size_3d(spatial_size: Any) -> tuple[int, int, int]:
    """``spatial_size`` as three positive ints ``(D, H, W)``; anything else is refused naming what came."""
    dims = tuple(spatial_size) if isinstance(spatial_size, Sequence) and not isinstance(spatial_size, str) else ()
    if len(dims) != 3 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in dims):
        raise ValueError(f"expected spatial_size as three positive integers (D, H, W), got {spatial_size!r}")
    return (int(dims[0]), int(dims[1]), int(dims[2]))


def check_label_map(label: NdarrayOrTensor) -> None:
    """Raise ``ValueError`` unless ``label`` has shape ``(1, D, H, W)``."""
    if not hasattr(label, "shape") or len(label.shape) != 4 or label.shape[0] != 1:
        got = shape_of(label) if hasattr(label, "shape") else type(label).__name__
        raise ValueError(f"expected a label map of shape (1, D, H, W), got {got}")


def check_volume(img: NdarrayOrTensor, what: str = "image") -> None:
    """Raise ``ValueError`` unless ``img`` is a channel-first 3D volume ``(C, D, H, W)``."""
    if not hasattr(img, "shape") or len(img.shape) != 4:
        got = shape_of(img) if hasattr(img, "shape") else type(img).__name__
        raise ValueError(f"expected a channel-first 3D {what} of shape (C, D, H, W), got {got}")


def structure_label_values(structure_labels: Mapping[str, int] | Sequence[int]) -> list[int]:
    """The label values of ``structure_labels`` (a ``{name: value}`` mapping or a sequence), in channel order.

    Raises:
        ValueError: empty, non-integer, background (0) or repeated values.
    """
    values = list(structure_labels.values()) if isinstance(structure_labels, Mapping) else list(structure_labels)
    if isinstance(structure_labels, (str, bytes)) or not values:
        raise ValueError(f"expected a non-empty mapping or sequence of label values, got {structure_labels!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not float(v).is_integer():
            raise ValueError(f"expected integer label values, got {v!r} in {structure_labels!r}")
        out.append(int(v))
    if 0 in out:
        raise ValueError(f"label value 0 is background and cannot be a structure, got {structure_labels!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"expected distinct label values, got {out}")
    return out
