"""Low-latency streaming inference for the GRU regressor: one tick at a time, hidden state carried inside.

:class:`GRUStreamingInferer` is the project's fastest single-step path. It is a hand-written GRU cell over
preallocated tensors, with the eval-mode batch norm folded into the first layer's input projection:

- per layer one buffer ``g = [n_in | r | z | n_h]`` (4 · hidden) is filled by two matrix-vector products:
  ``g[H:4H] = W_hh h + b'`` (fresh) then ``g[0:3H] += W_ih' x`` (accumulate; ``g[0:H]`` is reset to ``b_in``
  once per tick for all layers), with the rows of ``W_ih`` reordered to ``[n; r; z]`` and ``b_ir + b_hr``,
  ``b_iz + b_hz`` merged;
- then in place: ``sigmoid`` over ``[r | z]``, ``n = tanh(n_in + r * n_h)``, ``h = lerp(n, h, z)``
  (``= (1 - z) * n + z * h``), which is PyTorch's GRU update.

With ``backend="torch"`` that is about 20 in-place framework calls per tick, no allocation; with
``backend="native"`` (the default whenever a C compiler is available, batch 1, float32, CPU) the same cell runs as
one C call per tick (``gru_tick.c``, see :mod:`seq_models.inferers.native`). Outputs equal
:class:`~seq_models.networks.gru_regression.SingleStepGRURegressor` in eval mode up to float rounding
(tested ≤ 1e-5).
"""

from __future__ import annotations

import torch

from monai_glue.config_values import parse_bool
from seq_models.networks.gru_regression import FoldedGRUStep, PaddedGRURegressor, SingleStepGRURegressor
from seq_models.networks.rnn import unroll

__all__ = ["GRUStreamingInferer", "run_single_step"]


class GRUStreamingInferer:
    """Stateful tick-by-tick predictor built from a (batch or single-step) GRU regressor.

    Args:
        model: :class:`PaddedGRURegressor` or :class:`SingleStepGRURegressor` (weights and batch-norm running
            statistics are copied; later changes to ``model`` are not seen).
        batch_size: number of parallel streams B.
        check_inputs: validate shape and NaN of every tick; the hidden state is left unchanged when a tick is
            refused. (The native backend always checks NaN and the element count, in C.)
        backend: ``"native"``: the tick as one C call (``gru_tick.c``, built with the system compiler on first
            use, batch 1, float32 CPU); ``"torch"``: the hand-written cell in PyTorch calls; ``"auto"``: native
            when it can be built and applies, else torch.

    Example::

        streamer = GRUStreamingInferer(model)
        for x_t in feed:              # x_t: [F] or [1, F]
            y_t = streamer.step(x_t)  # [1, 1], a view valid until the next tick (clone to keep it)
    """

    def __init__(
        self,
        model: PaddedGRURegressor | SingleStepGRURegressor | FoldedGRUStep,
        batch_size: int = 1,
        check_inputs: bool = True,
        backend: str = "auto",
    ) -> None:
        if backend not in ("auto", "native", "torch"):
            raise ValueError(f"expected backend 'auto', 'native' or 'torch', got {backend!r}")
        folded = model if isinstance(model, FoldedGRUStep) else FoldedGRUStep.from_model(model)
        if batch_size < 1:
            raise ValueError(f"expected batch_size >= 1, got {batch_size}")
        self.input_size = folded.input_size
        self.hidden_size = hs = folded.hidden_size
        self.num_layers = nl = folded.num_layers
        self.batch_size = batch_size
        self.check_inputs = parse_bool(check_inputs, "check_inputs")
        w = folded.flat_weights
        dtype, device = w[0].dtype, w[0].device
        self._w_ih: list[torch.Tensor] = []
        self._w_hh: list[torch.Tensor] = []
        self._b_hh: list[torch.Tensor] = []
        b_in = []
        with torch.no_grad():
            for layer in range(nl):
                w_ih, w_hh, b_ih, b_hh = w[4 * layer : 4 * layer + 4]
                wr, wz, wn = w_ih.split(hs)
                br, bz, bn = b_ih.split(hs)
                hr, hz, hn = b_hh.split(hs)
                self._w_ih.append(torch.cat([wn, wr, wz]).contiguous())
                self._w_hh.append(w_hh.contiguous().clone())
                self._b_hh.append(torch.cat([br + hr, bz + hz, hn]).contiguous())
                b_in.append(bn)
            self._b_in = torch.stack(b_in)[:, None, :].expand(nl, batch_size, hs).contiguous()
            self._lin_w = folded.linear_weight_t.t().contiguous().clone()  # [1, H]
            self._lin_b = folded.linear_bias.clone()
        if batch_size > 1:
            self._w_ih_t = [w_.t() for w_ in self._w_ih]
            self._w_hh_t = [w_.t() for w_ in self._w_hh]
        self._g = torch.zeros(nl, batch_size, 4 * hs, dtype=dtype, device=device)
        self._h = torch.zeros(nl, batch_size, hs, dtype=dtype, device=device)
        self._y = torch.zeros(batch_size, 1, dtype=dtype, device=device)
        self._x = torch.zeros(batch_size, self.input_size, dtype=dtype, device=device)
        g, h = self._g, self._h
        self._g_in = g[:, :, :hs]
        if batch_size == 1:  # 1-D views: matrix-vector calls are cheaper than matrix-matrix ones
            self._v_gh = [g[i, 0, hs:] for i in range(nl)]
            self._v_g3 = [g[i, 0, : 3 * hs] for i in range(nl)]
            self._v_rz = [g[i, 0, hs : 3 * hs] for i in range(nl)]
            self._v_n = [g[i, 0, :hs] for i in range(nl)]
            self._v_r = [g[i, 0, hs : 2 * hs] for i in range(nl)]
            self._v_z = [g[i, 0, 2 * hs : 3 * hs] for i in range(nl)]
            self._v_nh = [g[i, 0, 3 * hs :] for i in range(nl)]
            self._v_h = [h[i, 0] for i in range(nl)]
            self._v_x = self._x[0]
            self._v_y = self._y[0]
        else:
            self._v_gh = [g[i, :, hs:] for i in range(nl)]
            self._v_g3 = [g[i, :, : 3 * hs] for i in range(nl)]
            self._v_rz = [g[i, :, hs : 3 * hs] for i in range(nl)]
            self._v_n = [g[i, :, :hs] for i in range(nl)]
            self._v_r = [g[i, :, hs : 2 * hs] for i in range(nl)]
            self._v_z = [g[i, :, 2 * hs : 3 * hs] for i in range(nl)]
            self._v_nh = [g[i, :, 3 * hs :] for i in range(nl)]
            self._v_h = [h[i] for i in range(nl)]
            self._v_x = self._x
            self._v_y = self._y
        self._native = None
        native_ok = batch_size == 1 and dtype == torch.float32 and device.type == "cpu"
        if backend == "native" and not native_ok:
            raise ValueError(
                f"expected batch_size 1, float32 and CPU for the native backend, got {batch_size}, {dtype}, {device}"
            )
        if backend in ("auto", "native") and native_ok:
            from seq_models.inferers.native import NativeGRUTick

            try:
                self._native = NativeGRUTick(
                    w[0::4], w[1::4], w[2::4], w[3::4], folded.linear_weight_t.t(), folded.linear_bias, self._h
                )
                self._y_ptr = self._y.data_ptr()
            except RuntimeError:
                if backend == "native":
                    raise
        self.backend = "native" if self._native is not None else "torch"

    @property
    def hidden(self) -> torch.Tensor:
        """The current hidden state [num_layers, B, hidden_size] (a copy)."""
        return self._h.clone()

    def reset(self, hidden: torch.Tensor | None = None) -> None:
        """Start a new stream: zero hidden state, or ``hidden`` [num_layers, B, hidden_size]."""
        if hidden is None:
            self._h.zero_()
            return
        expected = (self.num_layers, self.batch_size, self.hidden_size)
        if tuple(hidden.shape) != expected:
            raise ValueError(f"expected a hidden state of shape {list(expected)}, got {list(hidden.shape)}")
        if bool(torch.isnan(hidden).any()):
            raise ValueError("expected a finite hidden state, got NaN")
        self._h.copy_(hidden)

    @torch.no_grad()
    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        """Advance every stream by one tick.

        Args:
            x_t: [B, F] raw features (for B = 1, [F] is accepted too).

        Returns:
            [B, 1] predictions: a view of an internal buffer, overwritten by the next tick.
        """
        if self._native is not None:
            if self.check_inputs and tuple(x_t.shape) not in ((1, self.input_size), (self.input_size,)):
                raise ValueError(f"expected one tick of shape [1, {self.input_size}], got {list(x_t.shape)}")
            if x_t.numel() != self.input_size:  # memory safety, even unchecked
                raise ValueError(f"expected {self.input_size} features, got {x_t.numel()}")
            if x_t.dtype != torch.float32 or not x_t.is_contiguous() or x_t.device.type != "cpu":
                x_t = x_t.to(device="cpu", dtype=torch.float32).contiguous()
            if self._native(x_t.data_ptr(), self._y_ptr) != 0:
                raise ValueError("expected finite features, got NaN in x_t")
            return self._y
        if self.check_inputs:
            shape = tuple(x_t.shape)
            if shape != (self.batch_size, self.input_size) and not (self.batch_size == 1 and shape == (self.input_size,)):
                raise ValueError(f"expected one tick of shape [{self.batch_size}, {self.input_size}], got {list(shape)}")
            if bool(torch.isnan(x_t).any()):
                raise ValueError("expected finite features, got NaN in x_t")
        self._v_x.copy_(x_t.reshape(self._v_x.shape))
        self._g_in.copy_(self._b_in)
        inp = self._v_x
        if self.batch_size == 1:
            for i in range(self.num_layers):
                torch.addmv(self._b_hh[i], self._w_hh[i], self._v_h[i], out=self._v_gh[i])
                self._v_g3[i].addmv_(self._w_ih[i], inp)
                self._v_rz[i].sigmoid_()
                self._v_n[i].addcmul_(self._v_r[i], self._v_nh[i]).tanh_()
                torch.lerp(self._v_n[i], self._v_h[i], self._v_z[i], out=self._v_h[i])
                inp = self._v_h[i]
            torch.addmv(self._lin_b, self._lin_w, inp, out=self._v_y)
        else:
            for i in range(self.num_layers):
                self._v_gh[i].copy_(torch.addmm(self._b_hh[i], self._v_h[i], self._w_hh_t[i]))
                self._v_g3[i].addmm_(inp, self._w_ih_t[i])
                self._v_rz[i].sigmoid_()
                self._v_n[i].addcmul_(self._v_r[i], self._v_nh[i]).tanh_()
                torch.lerp(self._v_n[i], self._v_h[i], self._v_z[i], out=self._v_h[i])
                inp = self._v_h[i]
            torch.addmm(self._lin_b, inp, self._lin_w.t(), out=self._v_y)
        return self._y

    @torch.no_grad()
    def run(self, series: torch.Tensor) -> torch.Tensor:
        """Feed a whole series tick by tick from the current state.

        Args:
            series: [B, T, F] (or [T, F] for B = 1).

        Returns:
            [B, T] predictions (a new tensor).
        """
        if series.dim() == 2 and self.batch_size == 1:
            series = series.unsqueeze(0)
        if series.dim() != 3 or series.shape[0] != self.batch_size or series.shape[2] != self.input_size:
            raise ValueError(
                f"expected a series of shape [{self.batch_size}, T, {self.input_size}], got {list(series.shape)}"
            )
        if bool(torch.isnan(series).any()):
            raise ValueError("expected finite features, got NaN in the series")
        check, self.check_inputs = self.check_inputs, False
        try:
            out = torch.empty(self.batch_size, series.shape[1], dtype=self._y.dtype, device=self._y.device)
            for t in range(series.shape[1]):
                out[:, t] = self.step(series[:, t])[:, 0]
        finally:
            self.check_inputs = check
        return out


@torch.no_grad()
def run_single_step(
    model: SingleStepGRURegressor | FoldedGRUStep, series: torch.Tensor, hidden: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step a single-step model through a series (the reference streaming loop): :func:`~seq_models.networks.rnn.unroll`
    without gradients, the [B, 1] predictions laid side by side.

    Args:
        model: a single-step model with ``forward(x_t, h) -> (y, h)`` and ``init_hidden(B)``.
        series: [B, T, F].
        hidden: initial state [num_layers, B, hidden]; zeros when ``None``.

    Returns:
        ``(y, h)``: predictions [B, T] and the final hidden state.
    """
    y, h = unroll(model, series, hidden)
    return y.flatten(1), h
