"""Tiled IAM4VP forecasting over frames larger than the model's: MONAI sliding windows with blending.

IAM4VP's mask token has the latent's spatial size, so a model is built for one frame size. A model built for a
tile runs over larger frames in overlapping tiles; MONAI's ``sliding_window_inference`` cuts the windows and blends
them (Gaussian or constant weights). Peak memory then follows the tile: besides the frame itself and the stitched
output, only one window's activations live at once.

Tiles start on the encoder's stride grid (multiples of ``model.spatial_stride`` pixels, 4 for the seed), so every
tile sees the same latent grid as a whole-frame pass would: away from seams the tiled forecast equals a
whole-frame pass of the same weights wherever the learned mask token is the same (see ``docs/iam4vp.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.inferers import Inferer, sliding_window_inference
from torch import nn

from monai_glue.checkpoint import unwrap_model
from monai_glue.config_values import parse_bool

from .forecaster import check_history, model_shape_in

__all__ = ["TiledForecaster", "away_from_seams", "plan_tiles"]


def plan_tiles(size: int, tile: int, overlap: float, align: int) -> tuple[int, float, list[int]]:
    """Padded size, MONAI overlap and window starts along one axis, with starts on multiples of ``align``.

    The frame is padded at the end so that ``padded - tile`` is a multiple of ``align``; the step between
    windows is ``tile * (1 - overlap)`` rounded down to a multiple of ``align`` (at least ``align``), and the
    overlap handed to MONAI is chosen so that MONAI's own step (``int(tile * (1 - overlap))``) is that value.

    Returns:
        ``(padded_size, monai_overlap, starts)``.
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"expected an overlap in [0, 1), got {overlap}")
    padded = max(size, tile)
    padded += (-(padded - tile)) % align
    step = max(align, int(tile * (1.0 - overlap)) // align * align)
    step = min(step, tile)
    monai_overlap = 1.0 - (step + 0.5) / tile if step < tile else 0.0
    count = 1 if padded == tile else math.ceil((padded - tile) / step) + 1
    starts = sorted({min(i * step, padded - tile) for i in range(count)})
    return padded, max(0.0, monai_overlap), starts


def away_from_seams(
    size: tuple[int, int],
    tile: tuple[int, int],
    starts: tuple[Sequence[int], Sequence[int]],
    margin: int,
    padded: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Mask ``(H, W)``: True where every tile covering the pixel has it at least ``margin`` pixels inside its
    edges. Edges on the frame border do not count (there is no seam there), except where the frame was padded
    (``padded`` larger than ``size``): there the tile sees edge-replicated pixels where a whole-frame pass sees
    the convolutions' zero padding, so pixels within ``margin`` of that border are left out too."""
    masks = []
    for axis in range(2):
        n, t = size[axis], tile[axis]
        end = n if padded is None else padded[axis]
        ok = torch.ones(n, dtype=torch.bool)
        pos = torch.arange(n)
        for s in starts[axis]:
            inside = (pos >= s) & (pos < s + t)
            lo = pos - s if s > 0 else torch.full_like(pos, margin)
            hi = s + t - 1 - pos if s + t < end else torch.full_like(pos, margin)
            ok &= ~inside | ((lo >= margin) & (hi >= margin))
        if end > n:
            ok &= pos <= n - 1 - margin
        masks.append(ok)
    return masks[0][:, None] & masks[1][None, :]


class TiledForecaster(Inferer):
    """K-step autoregressive forecast of frames of any size with a model built for a tile.

    At each step the history and the stitched earlier predictions are stacked as channels
    ``(B, T·C + k·C, H, W)`` and passed through ``sliding_window_inference``; each window is unfolded back into
    the model's ``(x, previous_predictions, t)``. Predictions are stitched over the whole frame before the next
    step, so every tile sees its neighbours' earlier forecasts. Frames are padded at the end (edge values) to
    fit the aligned tile grid and cropped back.

    Args:
        steps: ``K`` (``None``: the model's history length).
        overlap: fraction of a tile shared with its neighbour, one value or ``(y, x)``; rounded so that tiles
            start on the model's stride grid.
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
        self.overlap = (float(overlap), float(overlap)) if isinstance(overlap, (int, float)) else tuple(float(o) for o in overlap)
        if len(self.overlap) != 2:
            raise ValueError(f"expected one overlap or (y, x), got {overlap}")
        self.mode = mode
        self.sigma_scale = sigma_scale
        self.sw_batch_size = sw_batch_size
        self.time_scale = float(time_scale)
        self.progress = parse_bool(progress, "progress")

    def plan(self, network: nn.Module, height: int, width: int) -> dict[str, Any]:
        """Tile layout for a frame: ``{"padded": (H', W'), "overlap": (oy, ox), "starts": ([y...], [x...])}``."""
        _, _, tile_h, tile_w = model_shape_in(network)
        align = int(getattr(unwrap_model(network), "spatial_stride", 1))
        ph, oy, sy = plan_tiles(height, tile_h, self.overlap[0], align)
        pw, ox, sx = plan_tiles(width, tile_w, self.overlap[1], align)
        return {"padded": (ph, pw), "overlap": (oy, ox), "starts": (sy, sx), "tile": (tile_h, tile_w)}

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, steps: int | None = None, **kwargs: Any) -> torch.Tensor:
        history_steps, channels, tile_h, tile_w = model_shape_in(network)
        k_steps = int(steps or self.steps or history_steps)
        history = check_history(inputs, history_steps, channels, k_steps, fill_nan=False)
        b, t_in, c, h, w = history.shape
        plan = self.plan(network, h, w)
        ph, pw = plan["padded"]
        # at most one frame-sized copy besides the caller's: the padded frame, or a NaN-free clone
        stacked = history.reshape(b, t_in * c, h, w)
        del history
        if (ph, pw) != (h, w):
            stacked = F.pad(stacked, (0, pw - w, 0, ph - h), mode="replicate")
            stacked.nan_to_num_(nan=0.0)
        elif bool(torch.isnan(stacked).any()):
            stacked = torch.nan_to_num(stacked, nan=0.0)
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
                overlap=plan["overlap"],
                mode=self.mode,
                sigma_scale=self.sigma_scale,
                progress=self.progress,
            )
            pred = torch.as_tensor(pred).clamp(0.0, 1.0)
            outputs.append(pred[..., :h, :w])
            if k + 1 < k_steps:
                stacked = torch.cat([stacked, pred], dim=1)
        return torch.stack(outputs, dim=1)
