"""Tiled IAM4VP forecasting over frames larger than the model's: MONAI sliding windows with blending.

IAM4VP's mask token has the latent's spatial size, so a model is built for one frame size. A model built for a
tile runs over larger frames in overlapping tiles; MONAI's ``sliding_window_inference`` cuts the windows and blends
them (Gaussian or constant weights). Peak memory then follows the tile: only the stitched output, the frame itself
and one window's activations live at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.inferers import Inferer, sliding_window_inference
from torch import nn

from .forecaster import check_history

__all__ = ["TiledForecaster"]


class TiledForecaster(Inferer):
    """K-step autoregressive forecast of frames of any size with a model built for a tile.

    At each step the history and the stitched earlier predictions are stacked as channels
    ``(B, T·C + k·C, H, W)`` and passed through ``sliding_window_inference``; each window is unfolded back into
    the model's ``(x, previous_predictions, t)``. Predictions are stitched over the whole frame before the next
    step, so every tile sees its neighbours' earlier forecasts.

    Args:
        steps: ``K`` (``None``: the model's history length).
        overlap: fraction of a tile shared with its neighbour, per axis or one value.
        mode: blending, ``"gaussian"`` or ``"constant"`` (MONAI ``BlendMode``).
        sigma_scale: Gaussian width as a fraction of the tile.
        sw_batch_size: tiles per forward pass.
        time_scale: time value per step.
        progress: show MONAI's tile progress bar.

    Call: ``tiled(history, network)`` with history ``(B, T', C, H, W)`` → ``(B, K, C, H, W)`` in ``[0, 1]``.
    """

    def __init__(
        self,
        steps: int | None = None,
        overlap: Sequence[float] | float = 0.25,
        mode: str = "gaussian",
        sigma_scale: Sequence[float] | float = 0.125,
        sw_batch_size: int = 1,
        time_scale: float = 100.0,
        progress: bool = False,
    ) -> None:
        super().__init__()
        self.steps = steps
        self.overlap = overlap
        self.mode = mode
        self.sigma_scale = sigma_scale
        self.sw_batch_size = sw_batch_size
        self.time_scale = float(time_scale)
        self.progress = progress

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, steps: int | None = None, **kwargs: Any) -> torch.Tensor:
        net = getattr(network, "module", network)
        shape_in = getattr(net, "shape_in", None)
        if shape_in is None:
            raise TypeError(f"expected an IAM4VP network (with .shape_in), got {type(net).__name__}")
        history_steps, channels, tile_h, tile_w = (int(s) for s in shape_in)
        k_steps = int(steps or self.steps or history_steps)
        history = check_history(inputs, history_steps, channels, k_steps)
        b, t_in, c, h, w = history.shape
        stacked = history.reshape(b, t_in * c, h, w)
        outputs: list[torch.Tensor] = []
        for k in range(k_steps):
            def predict(window: torch.Tensor, k: int = k) -> torch.Tensor:
                n = window.shape[0]
                x = window[:, : t_in * c].reshape(n, t_in, c, tile_h, tile_w)
                prev = [window[:, t_in * c + i * c : t_in * c + (i + 1) * c] for i in range(k)]
                t = torch.full((n,), self.time_scale * k, device=window.device)
                return network(x, prev, t)

            pred = sliding_window_inference(
                stacked,
                roi_size=(tile_h, tile_w),
                sw_batch_size=self.sw_batch_size,
                predictor=predict,
                overlap=self.overlap,
                mode=self.mode,
                sigma_scale=self.sigma_scale,
                progress=self.progress,
            )
            pred = torch.as_tensor(pred).clamp(0.0, 1.0)
            outputs.append(pred)
            stacked = torch.cat([stacked, pred], dim=1)
        return torch.stack(outputs, dim=1)
