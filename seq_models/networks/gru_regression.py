"""GRU sequence regression (seed 000): a padded batch model for training and a single-step model for serving.

Both models hold the same three submodules, ``batch_norm`` (``BatchNorm1d`` over the features), ``gru``
(``nn.GRU``, batch first) and ``linear`` (hidden → 1), so the batch model's state dict loads into the single-step
model unchanged. The batch model normalises only the valid time steps of a padded batch (padding never enters the
batch-norm statistics); the single-step model carries the hidden state from one tick to the next and, in eval
mode, reproduces the batch model's outputs.

:class:`FoldedGRUStep` is the low-latency serving path: the eval-mode batch norm folded into the first GRU layer's
input projection and one fused ATen GRU call per tick.

The seed's names (``PaddedLSTMRegression``, ``SingleStepLSTMRegression``) are kept as thin subclasses; despite the
name the recurrent layer is a GRU.
"""

from __future__ import annotations

from typing import List

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = [
    "PaddedGRURegressor",
    "SingleStepGRURegressor",
    "PaddedLSTMRegression",
    "SingleStepLSTMRegression",
    "FoldedGRUStep",
    "gru_regressor_small",
    "gru_regressor_large",
    "GRU_REGRESSOR_CONFIGS",
    "lengths_to_mask",
    "check_padded_batch",
    "check_gru_step",
]

#: seed 000's two configurations: ``(input_size, hidden_size, num_layers)``.
GRU_REGRESSOR_CONFIGS: dict[str, tuple[int, int, int]] = {"small": (10, 64, 2), "large": (148, 128, 3)}


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean mask of valid steps.

    Args:
        lengths: [B] integer lengths.
        max_len: T, the padded length.

    Returns:
        [B, T] bool tensor, ``True`` where ``t < lengths[b]``.
    """
    steps = torch.arange(max_len, device=lengths.device)
    return steps[None, :] < lengths.to(steps.device)[:, None]


def check_padded_batch(x: torch.Tensor, lengths: torch.Tensor | None, input_size: int) -> torch.Tensor:
    """Validate a padded batch and return the lengths as a CPU int64 tensor.

    Args:
        x: [B, T, F] padded features.
        lengths: [B] valid lengths (``None``: every sequence is T long).
        input_size: F the model was built for.

    Raises:
        ValueError: wrong rank or feature count, lengths of the wrong shape or outside [1, T], NaN in a valid step.
        TypeError: non-integer lengths.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected padded features of shape [B, T, {input_size}], got {got}")
    b, t, f = x.shape
    if f != input_size:
        raise ValueError(
            f"expected {input_size} features per step (shape [B, T, {input_size}]), got {f} in shape {tuple(x.shape)}"
        )
    if b == 0 or t == 0:
        raise ValueError(f"expected a non-empty batch [B>=1, T>=1, {input_size}], got shape {tuple(x.shape)}")
    if lengths is None:
        return torch.full((b,), t, dtype=torch.int64)
    lengths = torch.as_tensor(lengths)
    if lengths.is_floating_point() or lengths.dtype == torch.bool or lengths.is_complex():
        raise TypeError(f"expected integer lengths, got dtype {lengths.dtype}")
    if lengths.shape != (b,):
        raise ValueError(f"expected lengths of shape ({b},) for a batch of {b}, got {tuple(lengths.shape)}")
    lengths = lengths.to(device="cpu", dtype=torch.int64)
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > t:
        raise ValueError(f"expected every length in [1, {t}] (T of the padded batch), got min {lo} and max {hi}")
    return lengths


def _check_finite(values: torch.Tensor, what: str) -> None:
    if torch.isnan(values).any():
        raise ValueError(f"expected finite {what}, got NaN at {int(torch.isnan(values).sum())} position(s)")


def check_gru_step(x_t: torch.Tensor, h: torch.Tensor, input_size: int, num_layers: int, hidden_size: int) -> None:
    """Validate one step of the single-step GRU models (scriptable: the models call it from ``forward``).

    Args:
        x_t: [B, input_size] features of one time step.
        h: [num_layers, B, hidden_size] hidden state.
        input_size, num_layers, hidden_size: the model's sizes.

    Raises:
        ValueError: ``x_t`` or ``h`` of another shape, or NaN in ``x_t``.
    """
    if x_t.dim() != 2 or x_t.shape[1] != input_size:
        raise ValueError(f"expected one step of shape [B, {input_size}], got {list(x_t.shape)}")
    b = x_t.shape[0]
    if h.dim() != 3 or h.shape[0] != num_layers or h.shape[1] != b or h.shape[2] != hidden_size:
        raise ValueError(f"expected a hidden state of shape [{num_layers}, {b}, {hidden_size}], got {list(h.shape)}")
    if bool(torch.isnan(x_t).any()):
        raise ValueError("expected finite features, got NaN in x_t")


def _build_regressor_layers(
    module: nn.Module, input_size: int, hidden_size: int, num_layers: int, dropout: float
) -> None:
    """The layers both GRU regressors share, under the same names, so one state dict serves both:
    ``batch_norm`` (BatchNorm1d(F)), ``gru`` (GRU(F, H, L, batch_first)), ``linear`` (Linear(H, 1))."""
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if int(v) < 1:
            raise ValueError(f"expected {name} >= 1, got {v}")
    module.input_size = int(input_size)
    module.hidden_size = int(hidden_size)
    module.num_layers = int(num_layers)
    module.batch_norm = nn.BatchNorm1d(module.input_size)
    module.gru = nn.GRU(module.input_size, module.hidden_size, module.num_layers, batch_first=True, dropout=dropout)
    module.linear = nn.Linear(module.hidden_size, 1)

class PaddedGRURegressor(nn.Module):
    """Batch GRU regressor over padded sequences: one prediction per time step.

    ``x`` [B, T, F] → valid steps packed → ``BatchNorm1d`` on the packed steps only → padded back →
    ``GRU`` → ``Linear`` → [B, T]. Predictions at padded positions are set to 0; use
    :class:`seq_models.metrics.regression.MaskedMSELoss` so they never enter the loss.

    Args:
        input_size: F, features per step. Default 10 (seed's small configuration).
        hidden_size: GRU hidden size. Default 64.
        num_layers: stacked GRU layers. Default 2.
        dropout: dropout between GRU layers (0 in the seed).
        zero_head: start the linear head at zero weight and bias, so the untrained model predicts 0 everywhere
            (for residual targets: the "AR + GRU" hybrid then starts exactly at the AR forecast). Initialisation
            only; the state dict is unchanged.
    """

    def __init__(
        self, input_size: int = 10, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0,
        zero_head: bool = False,
    ) -> None:
        super().__init__()
        _build_regressor_layers(self, input_size, hidden_size, num_layers, dropout)
        if zero_head:
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            x: [B, T, F] padded features (any values in the padding).
            lengths: [B] valid lengths in [1, T], any order; ``None`` means all T.

        Returns:
            [B, T] predictions, 0 at padded steps.
        """
        lengths_cpu = check_padded_batch(x, lengths, self.input_size)
        b, t, _ = x.shape
        packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
        _check_finite(packed.data, "features in the valid steps")
        normed = PackedSequence(
            self.batch_norm(packed.data), packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
        )
        padded, _ = pad_packed_sequence(normed, batch_first=True, total_length=t)
        out, _ = self.gru(padded)
        y = self.linear(out).squeeze(-1)
        if int(lengths_cpu.min()) < t:
            y = y.masked_fill(~lengths_to_mask(lengths_cpu.to(y.device), t), 0.0)
        return y


class SingleStepGRURegressor(nn.Module):
    """One time step of :class:`PaddedGRURegressor`, carrying the GRU hidden state between calls.

    Same submodules (``batch_norm``, ``gru``, ``linear``) and constructor as the batch model: its state dict
    loads unchanged. In eval mode, stepping through a sequence from :meth:`init_hidden` reproduces the batch
    model's outputs. Scriptable with ``torch.jit.script``.

    Args:
        input_size: F, features per step. Default 10.
        hidden_size: GRU hidden size. Default 64.
        num_layers: stacked GRU layers. Default 2.
        dropout: dropout between GRU layers (0 in the seed).
    """

    def __init__(self, input_size: int = 10, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        _build_regressor_layers(self, input_size, hidden_size, num_layers, dropout)

    @classmethod
    def from_batch_model(cls, model: PaddedGRURegressor) -> SingleStepGRURegressor:
        """A single-step model with ``model``'s configuration and weights, in ``model``'s train/eval mode."""
        step = cls(model.input_size, model.hidden_size, model.num_layers, dropout=model.gru.dropout)
        step.load_state_dict(model.state_dict())
        return step.train(model.training).to(next(model.parameters()).device)

    @torch.jit.export
    def init_hidden(self, batch_size: int) -> torch.Tensor:
        """Zero hidden state [num_layers, batch_size, hidden_size] on the model's device."""
        w = self.linear.weight
        return torch.zeros(self.num_layers, batch_size, self.hidden_size, dtype=w.dtype, device=w.device)

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x_t: [B, F] features of one time step.
            h: [num_layers, B, hidden_size] hidden state (from :meth:`init_hidden` or the previous call).

        Returns:
            ``(y, h)``: prediction [B, 1] and the new hidden state [num_layers, B, hidden_size].
        """
        check_gru_step(x_t, h, self.input_size, self.num_layers, self.hidden_size)
        z = self.batch_norm(x_t)
        out, h_new = self.gru(z.unsqueeze(1), h)
        y = self.linear(out.squeeze(1))
        return y, h_new


class PaddedLSTMRegression(PaddedGRURegressor):
    """Seed 000's name for :class:`PaddedGRURegressor` (identical; the recurrent layer is a GRU)."""


class SingleStepLSTMRegression(SingleStepGRURegressor):
    """Seed 000's name for :class:`SingleStepGRURegressor` (identical; the recurrent layer is a GRU)."""


class FoldedGRUStep(nn.Module):
    """Eval-only single-step path with the batch norm folded into the first GRU layer's input projection.

    With eval-mode batch norm ``z = x * s + c`` (``s = gamma / sqrt(var + eps)``, ``c = beta - mean * s``), the
    first layer's input projection ``W_ih z + b_ih`` equals ``(W_ih * s) x + (b_ih + W_ih c)``. The tick is then one
    fused ATen GRU call over all layers plus one ``addmm``: a few framework calls instead of dozens. Outputs
    equal :class:`SingleStepGRURegressor` in eval mode up to float rounding (tested ≤ 1e-5).

    Build it with :meth:`from_model`; it holds detached copies of the weights (buffers, no gradients).

    Args:
        weights: flat GRU weights ``[w_ih_l0, w_hh_l0, b_ih_l0, b_hh_l0, w_ih_l1, ...]`` with layer 0 folded.
        linear_weight: [1, hidden_size].
        linear_bias: [1].
        check_inputs: validate shapes and NaN on every call (a few microseconds); disable only for inputs
            already validated upstream.
    """

    def __init__(
        self,
        weights: list[torch.Tensor],
        linear_weight: torch.Tensor,
        linear_bias: torch.Tensor,
        check_inputs: bool = True,
    ) -> None:
        super().__init__()
        if len(weights) % 4 != 0 or not weights:
            raise ValueError(f"expected 4 GRU tensors per layer, got {len(weights)}")
        self.num_layers = len(weights) // 4
        self.hidden_size = int(weights[1].shape[1])
        self.input_size = int(weights[0].shape[1])
        self.check_inputs = check_inputs
        self.flat_weights = [w.detach().clone().contiguous() for w in weights]
        for i, w in enumerate(self.flat_weights):
            self.register_buffer(f"w{i}", w)
        self.register_buffer("linear_weight_t", linear_weight.detach().t().contiguous().clone())
        self.register_buffer("linear_bias", linear_bias.detach().clone())

    @classmethod
    def from_model(cls, model: PaddedGRURegressor | SingleStepGRURegressor, check_inputs: bool = True) -> FoldedGRUStep:
        """Fold ``model``'s eval-mode batch norm into its first GRU layer.

        Args:
            model: a batch or single-step GRU regressor (its running statistics are used, whatever its mode).
            check_inputs: see the class docstring.
        """
        bn, gru = model.batch_norm, model.gru
        with torch.no_grad():
            mean = bn.running_mean if bn.track_running_stats and bn.running_mean is not None else None
            if mean is None:
                raise ValueError("expected a batch norm with running statistics to fold, got track_running_stats=False")
            scale = torch.rsqrt(bn.running_var + bn.eps)
            if bn.affine:
                scale = scale * bn.weight
            shift = -bn.running_mean * scale
            if bn.affine:
                shift = shift + bn.bias
            weights: list[torch.Tensor] = []
            for layer in range(gru.num_layers):
                w_ih = getattr(gru, f"weight_ih_l{layer}")
                w_hh = getattr(gru, f"weight_hh_l{layer}")
                b_ih = getattr(gru, f"bias_ih_l{layer}", None)
                b_hh = getattr(gru, f"bias_hh_l{layer}", None)
                if b_ih is None or b_hh is None:
                    b_ih = torch.zeros(w_ih.shape[0], dtype=w_ih.dtype, device=w_ih.device)
                    b_hh = torch.zeros_like(b_ih)
                if layer == 0:
                    b_ih = b_ih + w_ih @ shift
                    w_ih = w_ih * scale[None, :]
                weights += [w_ih, w_hh, b_ih, b_hh]
        return cls(weights, model.linear.weight, model.linear.bias, check_inputs=check_inputs)

    def _apply(self, fn, recurse=True):  # keep the flat list pointing at the (moved) buffers
        super()._apply(fn, recurse)
        self.flat_weights = [getattr(self, f"w{i}") for i in range(len(self.flat_weights))]
        return self

    @torch.jit.export
    def init_hidden(self, batch_size: int) -> torch.Tensor:
        """Zero hidden state [num_layers, batch_size, hidden_size]."""
        return torch.zeros(self.num_layers, batch_size, self.hidden_size, dtype=self.w0.dtype, device=self.w0.device)

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x_t: [B, F] raw (not normalised) features of one step.
            h: [num_layers, B, hidden_size].

        Returns:
            ``(y, h)``: [B, 1] and [num_layers, B, hidden_size].
        """
        if self.check_inputs:
            check_gru_step(x_t, h, self.input_size, self.num_layers, self.hidden_size)
        out, h_new = torch.gru(x_t.unsqueeze(0), h, self.flat_weights, True, self.num_layers, 0.0, False, False, False)
        y = torch.addmm(self.linear_bias, out[0], self.linear_weight_t)
        return y, h_new


# a real (not stringified) annotation, so that torch.jit.script types the weight list
FoldedGRUStep.__annotations__["flat_weights"] = List[torch.Tensor]


def gru_regressor_small(single_step: bool = False) -> PaddedGRURegressor | SingleStepGRURegressor:
    """Seed 000's small configuration (10 features, hidden 64, 2 layers; 39,637 parameters)."""
    cls = SingleStepGRURegressor if single_step else PaddedGRURegressor
    return cls(*GRU_REGRESSOR_CONFIGS["small"])


def gru_regressor_large(single_step: bool = False) -> PaddedGRURegressor | SingleStepGRURegressor:
    """Seed 000's large configuration (148 features, hidden 128, 3 layers; 305,321 parameters)."""
    cls = SingleStepGRURegressor if single_step else PaddedGRURegressor
    return cls(*GRU_REGRESSOR_CONFIGS["large"])
