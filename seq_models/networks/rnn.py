"""The RNN primer models (seed 001): vanilla RNN cells written out by hand, a deep vanilla RNN, LSTM and GRU models.

The three vanilla models are *cells*: ``forward(x_t, h) -> (y_t, h)`` for one time step, with ``init_hidden``.
:func:`unroll` steps any cell through a [B, T, F] sequence for many-to-one (last output) or synchronised
many-to-many (one output per step) use. :class:`LSTMModel` and :class:`GRUModel` take whole sequences.

Parameter counts at the seed's sizes (input 10, hidden 20, output 5): :class:`VanillaRNN` 745,
:class:`VanillaRNNCombined` 725, :class:`DeepVanillaRNN` (3 layers) 2,365.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import nn

__all__ = ["VanillaRNN", "VanillaRNNCombined", "DeepVanillaRNN", "LSTMModel", "GRUModel", "unroll"]


def _check_dims(**dims: int) -> None:
    for name, v in dims.items():
        if int(v) < 1:
            raise ValueError(f"expected {name} >= 1, got {v}")


def _check_step(x_t: torch.Tensor, input_dim: int) -> None:
    if x_t.dim() != 2 or x_t.shape[1] != input_dim:
        raise ValueError(f"expected one step of shape [B, {input_dim}], got {list(x_t.shape)}")
    if bool(torch.isnan(x_t).any()):
        raise ValueError("expected finite inputs, got NaN in x_t")


def _uniform_(t: torch.Tensor, hidden_dim: int) -> None:
    bound = 1.0 / math.sqrt(hidden_dim)
    nn.init.uniform_(t, -bound, bound)


class _ElmanCell(nn.Module):
    """Base of the hand-written cells: sizes checked and kept, the cell's own parameters (``cell_shapes``, in order)
    then the output layer ``W_ho`` [output_dim, hidden_dim], ``b_ho`` [output_dim], all initialised like ``nn.RNN``
    (uniform in ±1/sqrt(hidden_dim)), and a zero ``init_hidden``."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, **cell_shapes: tuple[int, ...]) -> None:
        super().__init__()
        _check_dims(input_dim=input_dim, hidden_dim=hidden_dim, output_dim=output_dim)
        self.input_dim, self.hidden_dim, self.output_dim = input_dim, hidden_dim, output_dim
        for name, shape in cell_shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape)))
        self.W_ho = nn.Parameter(torch.empty(output_dim, hidden_dim))
        self.b_ho = nn.Parameter(torch.empty(output_dim))
        for p in self.parameters():
            _uniform_(p, hidden_dim)

    def init_hidden(self, batch_size: int = 1) -> torch.Tensor:
        """Zero state h_0 of shape [batch_size, hidden_dim]."""
        return self.W_ho.new_zeros(batch_size, self.hidden_dim)


class VanillaRNN(_ElmanCell):
    """Elman RNN cell with separate input→hidden and hidden→hidden weights.

    ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, ``y_t = W_ho h_t + b_ho``.
    Parameters are initialised like ``nn.RNN`` (uniform in ±1/sqrt(hidden_dim)).

    Args:
        input_dim: features per step. Default 10.
        hidden_dim: hidden size. Default 20.
        output_dim: outputs per step. Default 5.
    """

    W_ih: nn.Parameter
    b_ih: nn.Parameter
    W_hh: nn.Parameter
    b_hh: nn.Parameter

    def __init__(self, input_dim: int = 10, hidden_dim: int = 20, output_dim: int = 5) -> None:
        super().__init__(
            input_dim, hidden_dim, output_dim,
            W_ih=(hidden_dim, input_dim), b_ih=(hidden_dim,), W_hh=(hidden_dim, hidden_dim), b_hh=(hidden_dim,),
        )  # fmt: skip

    def forward(self, x_t: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x_t: [B, input_dim], one time step.
            hidden: [B, hidden_dim] (or [hidden_dim], broadcast over the batch).

        Returns:
            ``(y_t, h_t)``: [B, output_dim] and [B, hidden_dim].
        """
        _check_step(x_t, self.input_dim)
        if hidden.shape[-1] != self.hidden_dim or hidden.dim() not in (1, 2) or (
            hidden.dim() == 2 and hidden.shape[0] != x_t.shape[0]
        ):
            raise ValueError(f"expected a hidden state of shape [{x_t.shape[0]}, {self.hidden_dim}], got {list(hidden.shape)}")
        h = torch.tanh(x_t @ self.W_ih.T + self.b_ih + hidden @ self.W_hh.T + self.b_hh)
        return h @ self.W_ho.T + self.b_ho, h


class VanillaRNNCombined(_ElmanCell):
    """Elman RNN cell with one weight matrix over the concatenated ``[x_t; h_{t-1}]``.

    ``h_t = tanh(W [x_t; h_{t-1}] + b)``, ``y_t = W_ho h_t + b_ho``: the same function class as
    :class:`VanillaRNN` with one bias vector fewer (``b_ih + b_hh`` merged into ``b``).

    Args:
        input_dim: features per step. Default 10.
        hidden_dim: hidden size. Default 20.
        output_dim: outputs per step. Default 5.
    """

    W: nn.Parameter
    b: nn.Parameter

    def __init__(self, input_dim: int = 10, hidden_dim: int = 20, output_dim: int = 5) -> None:
        super().__init__(input_dim, hidden_dim, output_dim, W=(hidden_dim, input_dim + hidden_dim), b=(hidden_dim,))

    @classmethod
    def from_separate(cls, rnn: VanillaRNN) -> VanillaRNNCombined:
        """The combined cell computing exactly what ``rnn`` computes (``W = [W_ih | W_hh]``, ``b = b_ih + b_hh``)."""
        out = cls(rnn.input_dim, rnn.hidden_dim, rnn.output_dim)
        with torch.no_grad():
            out.W.copy_(torch.cat([rnn.W_ih, rnn.W_hh], dim=1))
            out.b.copy_(rnn.b_ih + rnn.b_hh)
            out.W_ho.copy_(rnn.W_ho)
            out.b_ho.copy_(rnn.b_ho)
        return out

    def forward(self, x_t: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x_t: [B, input_dim].
            hidden: [B, hidden_dim].

        Returns:
            ``(y_t, h_t)``: [B, output_dim] and [B, hidden_dim].
        """
        _check_step(x_t, self.input_dim)
        if tuple(hidden.shape) != (x_t.shape[0], self.hidden_dim):
            raise ValueError(f"expected a hidden state of shape [{x_t.shape[0]}, {self.hidden_dim}], got {list(hidden.shape)}")
        h = torch.tanh(torch.cat((x_t, hidden), dim=1) @ self.W.T + self.b)
        return h @ self.W_ho.T + self.b_ho, h


class DeepVanillaRNN(nn.Module):
    """Stacked Elman RNN cell: layer ``l`` sees ``[input_l; h^l_{t-1}]`` through one ``Linear``.

    ``input_0 = x_t`` and ``input_l = h^{l-1}_t``; the output reads the top layer. (The seed's loop feeds layer
    ``l`` the previous state of layer ``l - 1``; here every layer recurs on its own state, as in ``nn.RNN``.
    Shapes and parameter counts are the same.)

    Args:
        input_dim: features per step. Default 10.
        hidden_dim: hidden size of every layer. Default 20.
        output_dim: outputs per step. Default 5.
        num_layers: stacked layers. Default 3.
    """

    def __init__(self, input_dim: int = 10, hidden_dim: int = 20, output_dim: int = 5, num_layers: int = 3) -> None:
        super().__init__()
        _check_dims(input_dim=input_dim, hidden_dim=hidden_dim, output_dim=output_dim, num_layers=num_layers)
        self.input_dim, self.hidden_dim, self.output_dim, self.num_layers = input_dim, hidden_dim, output_dim, num_layers
        self.rnn_layers = nn.ModuleList(
            nn.Linear((input_dim if i == 0 else hidden_dim) + hidden_dim, hidden_dim) for i in range(num_layers)
        )
        self.output_layer = nn.Linear(hidden_dim, output_dim)

    def init_hidden(self, batch_size: int = 1) -> torch.Tensor:
        """Zero state of shape [num_layers, batch_size, hidden_dim]."""
        return self.output_layer.weight.new_zeros(self.num_layers, batch_size, self.hidden_dim)

    def forward(self, x_t: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x_t: [B, input_dim].
            hidden: [num_layers, B, hidden_dim].

        Returns:
            ``(y_t, h_t)``: [B, output_dim] and [num_layers, B, hidden_dim].
        """
        _check_step(x_t, self.input_dim)
        expected = (self.num_layers, x_t.shape[0], self.hidden_dim)
        if tuple(hidden.shape) != expected:
            raise ValueError(f"expected a hidden state of shape {list(expected)}, got {list(hidden.shape)}")
        layer_in = x_t
        new_hidden = []
        for i, layer in enumerate(self.rnn_layers):
            layer_in = torch.tanh(layer(torch.cat((layer_in, hidden[i]), dim=1)))
            new_hidden.append(layer_in)
        return self.output_layer(layer_in), torch.stack(new_hidden)


class _SequenceModel(nn.Module):
    rnn: nn.LSTM | nn.GRU

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int, many_to_many: bool) -> None:
        super().__init__()
        _check_dims(input_dim=input_dim, hidden_dim=hidden_dim, output_dim=output_dim, num_layers=num_layers)
        self.input_dim, self.hidden_dim, self.output_dim, self.num_layers = input_dim, hidden_dim, output_dim, num_layers
        self.many_to_many = many_to_many

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[2] != self.input_dim:
            raise ValueError(f"expected a sequence of shape [B, T, {self.input_dim}], got {list(x.shape)}")
        if bool(torch.isnan(x).any()):
            raise ValueError("expected finite inputs, got NaN in the sequence")

    def _head(self, out: torch.Tensor) -> torch.Tensor:
        return self.fc(out if self.many_to_many else out[:, -1])


class LSTMModel(_SequenceModel):
    """``nn.LSTM`` (batch first) followed by a ``Linear`` head.

    Args:
        input_dim: features per step. Default 10.
        hidden_dim: hidden size. Default 20.
        output_dim: outputs. Default 5.
        num_layers: stacked LSTM layers. Default 1.
        many_to_many: ``True``: one output per step [B, T, output_dim] (synchronised many-to-many);
            ``False``: the last step's output [B, output_dim] (many-to-one).
    """

    def __init__(
        self, input_dim: int = 10, hidden_dim: int = 20, output_dim: int = 5, num_layers: int = 1, many_to_many: bool = False
    ) -> None:
        super().__init__(input_dim, hidden_dim, output_dim, num_layers, many_to_many)
        self.rnn = nn.LSTM(input_dim, hidden_dim, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def init_hidden(self, batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero ``(h_0, c_0)``, each [num_layers, batch_size, hidden_dim]."""
        z = self.fc.weight.new_zeros(self.num_layers, batch_size, self.hidden_dim)
        return z, z.clone()

    def forward(
        self, x: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """
        Args:
            x: [B, T, input_dim].
            hidden: ``(h, c)`` [num_layers, B, hidden_dim] each, or ``None`` for zeros.

        Returns:
            ``(y, (h, c))`` with y [B, output_dim] or [B, T, output_dim].
        """
        self._check(x)
        if hidden is not None:
            expected = (self.num_layers, x.shape[0], self.hidden_dim)
            if not isinstance(hidden, tuple) or len(hidden) != 2 or any(tuple(t.shape) != expected for t in hidden):
                got = [list(t.shape) for t in hidden] if isinstance(hidden, tuple) else type(hidden).__name__
                raise ValueError(f"expected (h, c), each of shape {list(expected)}, got {got}")
        out, state = self.rnn(x, hidden)
        return self._head(out), state


class GRUModel(_SequenceModel):
    """``nn.GRU`` (batch first) followed by a ``Linear`` head.

    Args:
        input_dim: features per step. Default 10.
        hidden_dim: hidden size. Default 20.
        output_dim: outputs. Default 5.
        num_layers: stacked GRU layers. Default 1.
        many_to_many: ``True``: [B, T, output_dim]; ``False``: [B, output_dim] from the last step.
    """

    def __init__(
        self, input_dim: int = 10, hidden_dim: int = 20, output_dim: int = 5, num_layers: int = 1, many_to_many: bool = False
    ) -> None:
        super().__init__(input_dim, hidden_dim, output_dim, num_layers, many_to_many)
        self.rnn = nn.GRU(input_dim, hidden_dim, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def init_hidden(self, batch_size: int = 1) -> torch.Tensor:
        """Zero h_0 [num_layers, batch_size, hidden_dim]."""
        return self.fc.weight.new_zeros(self.num_layers, batch_size, self.hidden_dim)

    def forward(self, x: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: [B, T, input_dim].
            hidden: [num_layers, B, hidden_dim] or ``None`` for zeros.

        Returns:
            ``(y, h)`` with y [B, output_dim] or [B, T, output_dim].
        """
        self._check(x)
        if hidden is not None:
            expected = (self.num_layers, x.shape[0], self.hidden_dim)
            if tuple(hidden.shape) != expected:
                raise ValueError(f"expected a hidden state of shape {list(expected)}, got {list(hidden.shape)}")
        out, h = self.rnn(x, hidden)
        return self._head(out), h


class _Cell(Protocol):
    def init_hidden(self, batch_size: int = 1) -> torch.Tensor: ...

    def __call__(self, x_t: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


def unroll(
    cell: _Cell, x: torch.Tensor, hidden: torch.Tensor | None = None, many_to_many: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step a cell (:class:`VanillaRNN`, :class:`VanillaRNNCombined`, :class:`DeepVanillaRNN`) through a sequence.

    Args:
        cell: ``cell(x_t, h) -> (y_t, h)`` with ``init_hidden(batch_size)``.
        x: [B, T, F].
        hidden: initial state; zeros from ``cell.init_hidden(B)`` when ``None``.
        many_to_many: ``True``: every step's output [B, T, O]; ``False``: the last one [B, O].

    Returns:
        ``(y, h)``: outputs and the final hidden state.
    """
    if x.dim() != 3:
        raise ValueError(f"expected a sequence of shape [B, T, F], got {list(x.shape)}")
    if x.shape[1] < 1:
        raise ValueError(f"expected at least one time step, got shape {list(x.shape)}")
    h = cell.init_hidden(x.shape[0]) if hidden is None else hidden
    outputs = []
    for t in range(x.shape[1]):
        y, h = cell(x[:, t], h)
        outputs.append(y)
    return (torch.stack(outputs, dim=1) if many_to_many else outputs[-1]), h
