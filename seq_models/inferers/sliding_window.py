"""Offline inference on very long series: MONAI's ``sliding_window_inference`` over the time axis with a burn-in.

A recurrent model needs its hidden state, so a window that starts in the middle of a series begins cold. Each
window therefore starts ``burn_in`` steps before the part it is trusted for: its first ``burn_in`` outputs get a
weight of ``eps`` in MONAI's blending and the rest a weight of 1. Windows are spaced ``window - burn_in`` apart,
so every step after the first window's start is covered by the trusted part of some window, and the first
``burn_in`` steps, seen only by the first window (which starts at step 0 with the true zero state), keep its
outputs exactly. The windows of a series run as one batch, which is where the speed comes from: ``window``
sequential GRU steps over ``n`` windows instead of ``T`` sequential steps over one.

The result equals the full sequential pass up to what the burn-in forgets (the state a window would have
inherited, which a contracting GRU forgets geometrically fast) plus ``eps`` times the burn-in outputs' error.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.inferers import Inferer, sliding_window_inference

from monai_glue.config_values import parse_bool

__all__ = ["TimeSlidingWindowInferer"]


class TimeSlidingWindowInferer(Inferer):
    """Sliding-window inference over time for sequence-to-sequence models ``network(x [n, W, F]) -> [n, W]``.

    Args:
        window: steps per window (W).
        burn_in: steps at the start of each window whose outputs are (almost) discarded; ``2 * burn_in <= window``.
        sw_batch_size: windows per network call.
        eps: blending weight of the burn-in outputs (must be > 0 so the first window's own burn-in steps, covered by
            no other window, keep their values).
        progress: show MONAI's progress bar.

    Call with ``inferer(x, network)``: ``x`` [B, T, F] → [B, T]. Series no longer than ``window`` run in one call.
    """

    def __init__(self, window: int, burn_in: int, sw_batch_size: int = 16, eps: float = 1e-6, progress: bool = False) -> None:
        super().__init__()
        if window < 2 or burn_in < 0 or 2 * burn_in > window:
            raise ValueError(f"expected window >= 2 and 0 <= burn_in <= window / 2, got window {window}, burn_in {burn_in}")
        if not 0 < eps < 1:
            raise ValueError(f"expected 0 < eps < 1, got {eps}")
        if sw_batch_size < 1:
            raise ValueError(f"expected sw_batch_size >= 1, got {sw_batch_size}")
        progress = parse_bool(progress, "progress")
        self.window, self.burn_in, self.sw_batch_size, self.eps, self.progress = window, burn_in, sw_batch_size, eps, progress

    def weight_map(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """[1, 1, window] blending weights: ``eps`` over the burn-in, 1 after it."""
        w = torch.ones(1, 1, self.window, dtype=dtype, device=device)
        w[..., : self.burn_in] = self.eps
        return w

    def __call__(self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args, **kwargs) -> torch.Tensor:
        """
        Args:
            inputs: [B, T, F] series.
            network: ``network(x [n, W, F]) -> [n, W]``.

        Returns:
            [B, T] outputs.
        """
        if inputs.dim() != 3:
            raise ValueError(f"expected a series batch of shape [B, T, F], got {list(inputs.shape)}")
        t = inputs.shape[1]
        if t <= self.window:
            return network(inputs, *args, **kwargs)

        def predictor(win: torch.Tensor) -> torch.Tensor:  # MONAI layout [n, F, W] ↔ model layout [n, W, F]
            out = network(win.transpose(1, 2), *args, **kwargs)
            return out.unsqueeze(1)

        overlap = self.burn_in / self.window
        out = sliding_window_inference(
            inputs.transpose(1, 2),
            roi_size=(self.window,),
            sw_batch_size=self.sw_batch_size,
            predictor=predictor,
            overlap=overlap,
            roi_weight_map=self.weight_map(inputs.dtype, inputs.device),
            progress=self.progress,
        )
        return torch.as_tensor(out)[:, 0]
