"""Datasets over arrays or tensors for the RNN primer (seed 001) and for windowed series training.

- :class:`RegularDataset`: independent samples ``(x_i, y_i)``, as for an MLP or a CNN.
- :class:`SequentialDataset`: consecutive windows that do not overlap (stride = window).
- :class:`SlidingWindowDataset`: windows of ``window`` steps every ``stride`` steps; the target is a per-window
  label, or the per-step target series shifted by ``horizon`` (synchronised many-to-many), or its last value
  (many-to-one). ``drop_last=False`` keeps a final partial window, zero-padded, with its true length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["RegularDataset", "SequentialDataset", "SlidingWindowDataset", "as_float_tensor"]


def as_float_tensor(data: Any, name: str = "data", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Convert a NumPy array, tensor or nested sequence to a tensor of ``dtype`` (labels keep integer dtypes).

    Raises:
        TypeError: ``data`` cannot be converted.
    """
    if isinstance(data, torch.Tensor):
        t = data
    else:
        try:
            t = torch.as_tensor(np.asarray(data))
        except (TypeError, ValueError) as e:
            raise TypeError(f"expected {name} as an array, a tensor or a nested sequence, got {type(data).__name__}") from e
    if t.is_floating_point() and dtype is not None:
        t = t.to(dtype)
    return t


class RegularDataset(Dataset):
    """Independent samples: item ``i`` is ``(data[i], labels[i])``.

    Args:
        data: [N, ...] samples (array or tensor).
        labels: [N, ...] labels.
    """

    def __init__(self, data: Any, labels: Any) -> None:
        self.data = as_float_tensor(data, "data")
        self.labels = as_float_tensor(labels, "labels")
        if self.data.ndim < 1 or len(self.data) != len(self.labels):
            raise ValueError(
                f"expected as many labels as samples, got {len(self.labels)} labels for data of shape {list(self.data.shape)}"
            )

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data[idx], self.labels[idx]


class SlidingWindowDataset(Dataset):
    """Windows over a series, with overlap when ``stride < window``.

    Window ``k`` covers steps ``[k * stride, k * stride + window)`` of ``data`` [N, F] (or [N]).
    Its target is, by priority:

    - ``labels[k]`` when per-window ``labels`` are given (the seed's classification examples);
    - else ``targets[s + horizon : s + horizon + window]`` (``target_mode="sequence"``, one target per step) or
      ``targets[s + horizon + window - 1]`` (``target_mode="last"``), with ``targets`` defaulting to ``data``.

    Args:
        data: [N, F] or [N] series.
        window: steps per window (>= 1).
        stride: steps between window starts (>= 1); ``stride == window`` gives non-overlapping windows.
        horizon: how far ahead the target is read (>= 0).
        targets: [N] or [N, D] per-step targets (default: ``data``).
        labels: one label per window; their count must equal the number of windows.
        target_mode: ``"sequence"`` or ``"last"``.
        drop_last: ``False`` adds a final partial window (zero-padded to ``window`` steps) when the series does
            not end on a window boundary; its valid length is reported in dict mode.
        as_dict: return ``{"image": x [window, F], "target": y, "lengths": n}`` (MONAI engine style) instead of
            ``(x, y)``.

    Raises:
        ValueError: non-positive window or stride, negative horizon, a series shorter than one window,
            targets of another length, a label count that does not match, NaN in the data.
    """

    def __init__(
        self,
        data: Any,
        window: int,
        stride: int = 1,
        horizon: int = 0,
        targets: Any | None = None,
        labels: Sequence | Any | None = None,
        target_mode: str = "sequence",
        drop_last: bool = True,
        as_dict: bool = False,
    ) -> None:
        self.data = as_float_tensor(data, "data")
        if self.data.ndim not in (1, 2):
            raise ValueError(f"expected a series of shape [N] or [N, F], got {list(self.data.shape)}")
        if int(window) < 1 or int(stride) < 1 or int(horizon) < 0:
            raise ValueError(f"expected window >= 1, stride >= 1 and horizon >= 0, got {window}, {stride}, {horizon}")
        if target_mode not in ("sequence", "last"):
            raise ValueError(f"expected target_mode 'sequence' or 'last', got {target_mode!r}")
        if self.data.is_floating_point() and bool(torch.isnan(self.data).any()):
            raise ValueError(f"expected a finite series, got NaN at {int(torch.isnan(self.data).sum())} position(s)")
        self.window, self.stride, self.horizon = int(window), int(stride), int(horizon)
        self.target_mode, self.as_dict = target_mode, as_dict
        self.targets = self.data if targets is None else as_float_tensor(targets, "targets")
        if len(self.targets) != len(self.data):
            raise ValueError(f"expected targets of length {len(self.data)} (the series length), got {len(self.targets)}")
        usable = len(self.data) - self.horizon if labels is None else len(self.data)
        if usable < self.window:
            raise ValueError(
                f"expected a series of at least window + horizon = {self.window + (self.horizon if labels is None else 0)} "
                f"steps, got {len(self.data)}"
            )
        self.starts = list(range(0, usable - self.window + 1, self.stride))
        self.lengths = [self.window] * len(self.starts)
        tail = self.starts[-1] + self.stride
        if not drop_last and tail < usable:
            self.starts.append(tail)
            self.lengths.append(usable - tail)
        self.labels = None if labels is None else as_float_tensor(labels, "labels")
        if self.labels is not None and len(self.labels) != len(self.starts):
            raise ValueError(f"expected {len(self.starts)} labels (one per window), got {len(self.labels)}")

    def __len__(self) -> int:
        return len(self.starts)

    def _pad(self, t: torch.Tensor, n: int) -> torch.Tensor:
        if n == self.window:
            return t
        out = t.new_zeros((self.window, *t.shape[1:]))
        out[:n] = t
        return out

    def __getitem__(self, idx: int) -> Any:
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f"expected a window index in [0, {len(self)}), got {idx}")
        s, n = self.starts[idx], self.lengths[idx]
        x = self._pad(self.data[s : s + n], n)
        if self.labels is not None:
            y = self.labels[idx]
        elif self.target_mode == "sequence":
            y = self._pad(self.targets[s + self.horizon : s + self.horizon + n], n)
        else:
            y = self.targets[s + self.horizon + n - 1]
        if self.as_dict:
            return {"image": x, "target": y, "lengths": torch.tensor(n, dtype=torch.int64)}
        return x, y


class SequentialDataset(SlidingWindowDataset):
    """Consecutive non-overlapping windows: :class:`SlidingWindowDataset` with ``stride = window``.

    Args:
        data: [N, F] or [N] series; ``N // window`` windows (a shorter tail is dropped unless ``drop_last=False``).
        window: steps per window.
        labels: one label per window, or ``None`` for per-step targets (see :class:`SlidingWindowDataset`).
        kwargs: ``horizon``, ``targets``, ``target_mode``, ``drop_last``, ``as_dict``.
    """

    def __init__(self, data: Any, window: int, labels: Any | None = None, **kwargs: Any) -> None:
        if "stride" in kwargs:
            raise TypeError("SequentialDataset fixes stride = window; use SlidingWindowDataset for another stride")
        super().__init__(data, window, stride=window, labels=labels, **kwargs)
