"""IAM4VP (Seo et al., CVPR 2023): implicit stacked autoregressive video prediction, one future frame per call.

The layout follows the public cloudcasting application whose model summary is seed 003: 11 satellite channels,
12 history frames, 372×614 pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .decoder import Decoder
from .encoder import Encoder
from .predictor import Predictor
from .refinement import SpatioTemporalRefinement
from .time_mlp import TimeMLP

__all__ = ["IAM4VP"]


def _latent_size(size: int, num_layers: int) -> int:
    """Spatial size after the encoder's stride-2 units (``ceil`` halving, as a k3 p1 s2 convolution does)."""
    for _ in range(num_layers // 2):
        size = (size + 1) // 2
    return size


class IAM4VP(nn.Module):
    """Predict the next frame of a satellite sequence from ``T`` history frames and the frames it already predicted.

    The history is encoded frame by frame; ``T`` future slots start as a learned mask token and slot ``k`` is
    replaced by the *learned prior* encoding of previous prediction ``k``. History and slots are stacked along
    time and mixed by a predictor conditioned on the time value ``t``; the decoded frames are refined into one
    output frame. A forecast of ``K`` steps calls the model ``K`` times (see
    :class:`seq_models.inferers.IAM4VPForecaster`).

    The mask token has the latent's spatial size, so a model is tied to its frame size ``(H, W)``; larger frames
    are handled by tiled inference (:class:`seq_models.inferers.TiledForecaster`).

    **Nowcast prior** (``prior_steps = P > 0``): the last ``P`` of the ``T`` input frames are not history but an
    extrapolation nowcast of leads ``1..P`` (the optical-flow forecast, appended by
    :func:`seq_models.baselines.append_nowcast_prior`), and the model predicts a correction to it: call ``k``
    returns ``x[:, T - P + k]`` plus the refined output. The readout starts at zero, so an untrained model *is*
    the nowcast and training learns what the advection misses (growth, decay, smoothing of uncertain detail). At
    most ``P`` steps can be forecast. The value is kept in the state dict (buffer ``prior_steps``), so weights of
    a prior model do not load into a plain one, or the reverse. ``prior_method`` names the nowcast
    (:data:`seq_models.baselines.NOWCAST_PRIOR_METHODS`): Farneback's optical flow by default, or pysteps' S-PROG
    for radar rain. A method other than the default is kept in the state dict too (buffer ``prior_method``, its
    index in that tuple), so weights trained on one nowcast refuse to load where another one is made.

    Args:
        shape_in: ``(T, C, H, W)``: history steps, channels, height, width. Default: the seed's 12×11×372×614.
        latent_channels: hidden channels per frame (``hid_S``; 64).
        num_convolutions_space: ``N_S``, ``ConvSC`` units in the encoder and in the decoder (4).
        num_convolutions_time: ``N_T``, ConvNeXt blocks in the predictor (6).
        time_dim: size of the time embedding (64).
        prior_steps: ``P``, the input frames that are a nowcast prior (0: none, the seed's model).
        prior_method: the nowcast those frames are, ``"farneback"`` or ``"sprog"`` (only with ``P > 0``).

    Example::

        model = IAM4VP(shape_in=(12, 11, 372, 614))
        y = model(x, [], torch.tensor([100.0]))  # x: (B, 12, 11, 372, 614) -> y: (B, 11, 372, 614)
    """

    def __init__(
        self,
        shape_in: Sequence[int] = (12, 11, 372, 614),
        latent_channels: int = 64,
        num_convolutions_space: int = 4,
        num_convolutions_time: int = 6,
        time_dim: int = 64,
        prior_steps: int = 0,
        prior_method: str = "farneback",
    ) -> None:
        super().__init__()
        if len(shape_in) != 4 or any(int(s) < 1 for s in shape_in):
            raise ValueError(f"expected shape_in = (T, C, H, W) of positive sizes, got {tuple(shape_in)}")
        t_in, c_in, h_in, w_in = (int(s) for s in shape_in)
        if not 0 <= int(prior_steps) < t_in:
            raise ValueError(
                f"expected 0 <= prior_steps < T = {t_in} (at least one history frame before the prior), got {prior_steps}"
            )
        from seq_models.baselines.nowcast_prior import NOWCAST_PRIOR_METHODS  # baselines need OpenCV: only here

        if prior_method not in NOWCAST_PRIOR_METHODS or (prior_method != NOWCAST_PRIOR_METHODS[0] and not prior_steps):
            raise ValueError(
                f"expected prior_method in {NOWCAST_PRIOR_METHODS} (other than {NOWCAST_PRIOR_METHODS[0]!r} only with "
                f"prior_steps > 0), got {prior_method!r} with prior_steps {prior_steps}"
            )
        self.shape_in = (t_in, c_in, h_in, w_in)
        self.latent_channels = latent_channels
        h_lat, w_lat = _latent_size(h_in, num_convolutions_space), _latent_size(w_in, num_convolutions_space)
        self.latent_shape = (h_lat, w_lat)
        self.spatial_stride = 2 ** (num_convolutions_space // 2)  # pixels per latent cell
        self.num_convolutions_space = num_convolutions_space
        self.num_convolutions_time = num_convolutions_time
        self.time_dim = time_dim

        self.mask_token = nn.Parameter(torch.zeros(t_in, latent_channels, h_lat, w_lat))
        self.lp = Encoder(c_in, latent_channels, num_convolutions_space)  # learned prior of previous predictions
        self.enc = Encoder(c_in, latent_channels, num_convolutions_space)
        self.time_mlp = TimeMLP(time_dim)
        self.hid = Predictor(t_in, latent_channels, num_convolutions_time, time_dim)
        self.dec = Decoder(latent_channels, c_in, num_convolutions_space)
        self.attn = SpatioTemporalRefinement(t_in, c_in)
        if prior_steps:
            self.register_buffer("prior_steps", torch.tensor(int(prior_steps)))
            if prior_method != NOWCAST_PRIOR_METHODS[0]:  # the default stays out: earlier prior weights still load
                self.register_buffer("prior_method", torch.tensor(NOWCAST_PRIOR_METHODS.index(prior_method)))
            nn.init.zeros_(self.attn.conv.weight)  # start as the nowcast: a zero correction
            nn.init.zeros_(self.attn.conv.bias)

    @property
    def num_prior_steps(self) -> int:
        """``P``: input frames that are a nowcast prior (0 for a plain model)."""
        prior = getattr(self, "prior_steps", None)
        return int(prior) if prior is not None else 0

    @property
    def prior_method_name(self) -> str:
        """The nowcast the prior frames are (``"farneback"`` for a plain model too: it has no prior frames)."""
        from seq_models.baselines.nowcast_prior import NOWCAST_PRIOR_METHODS

        code = getattr(self, "prior_method", None)
        return NOWCAST_PRIOR_METHODS[int(code) if code is not None else 0]

    @property
    def num_history_steps(self) -> int:
        """``T - P``: the observed history frames (all ``T`` for a plain model)."""
        return self.shape_in[0] - self.num_prior_steps

    @property
    def history_steps(self) -> int:
        """``T``: history frames the model takes, and the most forecast steps it can make."""
        return self.shape_in[0]

    @property
    def channels(self) -> int:
        """``C``: channels per frame."""
        return self.shape_in[1]

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(H, W)`` the model is built for."""
        return self.shape_in[2], self.shape_in[3]

    def for_frame_size(self, height: int, width: int) -> IAM4VP:
        """A copy for frames of ``height`` × ``width``: the same weights, the mask token repeated periodically
        over the larger latent grid (and cropped). Used to compare tiled inference with a whole-frame pass."""
        t_in, c_in, _, _ = self.shape_in
        other = IAM4VP((t_in, c_in, height, width), self.latent_channels, self.num_convolutions_space,
                       self.num_convolutions_time, self.time_dim, self.num_prior_steps, self.prior_method_name)
        state = {k: v for k, v in self.state_dict().items() if k != "mask_token"}
        other.load_state_dict(state, strict=False)
        h_lat, w_lat = other.latent_shape
        reps = (1, 1, -(-h_lat // self.latent_shape[0]), -(-w_lat // self.latent_shape[1]))
        with torch.no_grad():
            other.mask_token.copy_(self.mask_token.detach().repeat(*reps)[..., :h_lat, :w_lat])
        return other.train(self.training)

    def check_inputs(
        self, x: torch.Tensor, previous_predictions: Sequence[torch.Tensor], t: torch.Tensor | None
    ) -> None:
        """Raise ``ValueError`` naming what was expected and what came when the inputs do not fit the model."""
        t_in, c_in, h_in, w_in = self.shape_in
        if not isinstance(x, torch.Tensor) or x.ndim != 5:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected x of shape (B, T, C, H, W) = (B, {t_in}, {c_in}, {h_in}, {w_in}), got {got}")
        if x.shape[1] < t_in:
            raise ValueError(f"expected {t_in} history steps, got {x.shape[1]} (x of shape {tuple(x.shape)})")
        if x.shape[1] != t_in:
            raise ValueError(
                f"expected exactly {t_in} history steps (pass the last {t_in}), got {x.shape[1]} "
                f"(x of shape {tuple(x.shape)})"
            )
        if x.shape[2] != c_in:
            raise ValueError(f"expected {c_in} channels, got {x.shape[2]} (x of shape {tuple(x.shape)})")
        if tuple(x.shape[3:]) != (h_in, w_in):
            raise ValueError(
                f"expected frames of {h_in}x{w_in} (the size this model was built for; use TiledForecaster for "
                f"other sizes), got {x.shape[3]}x{x.shape[4]}"
            )
        if len(previous_predictions) > t_in:
            raise ValueError(f"expected at most {t_in} previous predictions, got {len(previous_predictions)}")
        if self.num_prior_steps and len(previous_predictions) >= self.num_prior_steps:
            raise ValueError(
                f"expected fewer than {self.num_prior_steps} previous predictions (a model with a nowcast prior of "
                f"{self.num_prior_steps} frames forecasts at most that many steps), got {len(previous_predictions)}"
            )
        for k, p in enumerate(previous_predictions):
            if not isinstance(p, torch.Tensor) or tuple(p.shape) != (x.shape[0], c_in, h_in, w_in):
                got = tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
                raise ValueError(
                    f"expected previous prediction {k} of shape {(x.shape[0], c_in, h_in, w_in)}, got {got}"
                )
        if t is not None and (t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, x.shape[0]))):
            raise ValueError(f"expected t of shape (B,) = ({x.shape[0]},) or a scalar, got {tuple(t.shape)}")

    def forward(
        self,
        x: torch.Tensor,
        previous_predictions: Sequence[torch.Tensor] | None = None,
        t: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict one frame.

        Args:
            x: history ``(B, T, C, H, W)``, time before channels (with a prior: ``T - P`` history frames, then the
                ``P`` nowcast frames).
            previous_predictions: up to ``T`` frames ``(B, C, H, W)`` already predicted, oldest first.
            t: time value per sample ``(B,)`` (a scalar is broadcast); the forecaster passes
                ``100 * len(previous_predictions)``. ``None`` means that value.

        Returns:
            the next frame ``(B, C, H, W)`` (not clamped; the forecaster clamps to ``[0, 1]``).
        """
        previous = list(previous_predictions or [])
        self.check_inputs(x, previous, t)
        b, t_in, c, h, w = x.shape
        if t is None:
            t = torch.full((b,), 100.0 * len(previous), device=x.device)
        t = t.to(device=x.device).reshape(-1).expand(b) if t.ndim else t.to(device=x.device).reshape(1).expand(b)

        latent, skip = self.enc(x.reshape(b * t_in, c, h, w))
        latent = latent.reshape(b, t_in, *latent.shape[1:])

        slots = self.mask_token.unsqueeze(0).expand(b, -1, -1, -1, -1)
        if previous:
            k = len(previous)
            prior, _ = self.lp(torch.stack(previous, dim=1).reshape(b * k, c, h, w))
            prior = prior.reshape(b, k, *prior.shape[1:])
            slots = torch.cat([prior, slots[:, k:]], dim=1)

        time_emb = self.time_mlp(t)
        z = self.hid(torch.cat([latent, slots], dim=1), time_emb)
        decoded = self.dec(z.reshape(b * t_in, *z.shape[2:]), skip)
        out = self.attn(decoded.reshape(b, t_in * c, h, w))
        if self.num_prior_steps:
            out = out + x[:, t_in - self.num_prior_steps + len(previous)]
        return out
