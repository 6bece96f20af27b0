from __future__ import annotations

import pytest
import torch
from torchinfo import summary

from seq_models import DeepVanillaRNN, GRUModel, LSTMModel, VanillaRNN, VanillaRNNCombined
from seq_models.networks.rnn import unroll
from tests.seq_models.torchinfo_rows import summary_rows, table_rows


# seed 001's summaries (batch 32, input 10, hidden 20, output 5); "Units.MEGABYTES" printed as "M"
VANILLA = """
VanillaRNN                               [32, 5]                   745
Total params: 745
Trainable params: 745
Non-trainable params: 0
Total mult-adds (M): 0
Input size (MB): 0.00
Forward/backward pass size (MB): 0.00
Params size (MB): 0.00
Estimated Total Size (MB): 0.01
"""
DEEP = """
DeepVanillaRNN                           [32, 5]                   --
├─ModuleList: 1-1                        --                        --
│    └─Linear: 2-1                       [32, 20]                  620
│    └─Linear: 2-2                       [32, 20]                  820
│    └─Linear: 2-3                       [32, 20]                  820
├─Linear: 1-2                            [32, 5]                   105
Total params: 2,365
Trainable params: 2,365
Non-trainable params: 0
Total mult-adds (M): 0.08
Input size (MB): 0.01
Forward/backward pass size (MB): 0.02
Params size (MB): 0.01
Estimated Total Size (MB): 0.04
"""


def test_vanilla_summary_matches_seed():
    m = VanillaRNN(10, 20, 5)
    assert summary_rows(summary(m, input_size=((32, 10), (32, 20)), device="cpu", verbose=0)) == table_rows(VANILLA)


def test_combined_summary_matches_seed():
    m = VanillaRNNCombined(10, 20, 5)
    expected = [
        ln.replace("VanillaRNN          ", "VanillaRNNCombined  ").replace("745", "725") for ln in table_rows(VANILLA)
    ]
    assert summary_rows(summary(m, input_size=((32, 10), (32, 20)), device="cpu", verbose=0)) == expected


def test_deep_summary_and_repr_match_seed():
    m = DeepVanillaRNN(10, 20, 5, 3)
    assert summary_rows(summary(m, input_size=((32, 10), (3, 32, 20)), device="cpu", verbose=0)) == table_rows(DEEP)
    assert "(1-2): 2 x Linear(in_features=40, out_features=20, bias=True)" in repr(m)
    assert "(0): Linear(in_features=30, out_features=20, bias=True)" in repr(m)


def test_vanilla_step_by_hand():
    m = VanillaRNN(2, 3, 1)
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(0.1)
    x = torch.tensor([[1.0, 2.0]])
    y, h = m(x, m.init_hidden(1))
    # h = tanh(0.1*1 + 0.1*2 + 0.1 + 0 + 0.1) = tanh(0.5); y = 3 * 0.1 * tanh(0.5) + 0.1
    torch.testing.assert_close(h, torch.full((1, 3), torch.tanh(torch.tensor(0.5)).item()))
    torch.testing.assert_close(y, torch.tensor([[0.3 * torch.tanh(torch.tensor(0.5)).item() + 0.1]]))
    # the seed's un-batched init_hidden shape broadcasts over the batch
    y2, _ = m(x, torch.zeros(3))
    torch.testing.assert_close(y2, y)


def test_combined_equals_separate_weights():
    sep = VanillaRNN(4, 6, 2)
    comb = VanillaRNNCombined.from_separate(sep)
    x = torch.randn(3, 7, 4)
    y1, h1 = unroll(sep, x)
    y2, h2 = unroll(comb, x)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(h1, h2)


def test_deep_rnn_single_layer_equals_combined():
    deep = DeepVanillaRNN(4, 6, 2, num_layers=1)
    comb = VanillaRNNCombined(4, 6, 2)
    with torch.no_grad():
        comb.W.copy_(deep.rnn_layers[0].weight)
        comb.b.copy_(deep.rnn_layers[0].bias)
        comb.W_ho.copy_(deep.output_layer.weight)
        comb.b_ho.copy_(deep.output_layer.bias)
    x = torch.randn(2, 5, 4)
    y_deep, h_deep = unroll(deep, x)
    y_comb, h_comb = unroll(comb, x)
    torch.testing.assert_close(y_deep, y_comb)
    torch.testing.assert_close(h_deep[0], h_comb)


def test_deep_rnn_layers_recur_on_their_own_state():
    deep = DeepVanillaRNN(3, 4, 2, num_layers=2)
    x = torch.randn(1, 3)
    h = torch.randn(2, 1, 4)
    _, h_new = deep(x, h)
    h0 = torch.tanh(deep.rnn_layers[0](torch.cat([x, h[0]], 1)))
    h1 = torch.tanh(deep.rnn_layers[1](torch.cat([h0, h[1]], 1)))
    torch.testing.assert_close(h_new, torch.stack([h0, h1]))


def test_unroll_many_to_one_and_many_to_many():
    m = DeepVanillaRNN()
    x = torch.randn(32, 5, 10)
    y_seq, h = unroll(m, x, many_to_many=True)
    y_last, h2 = unroll(m, x, many_to_many=False)
    assert y_seq.shape == (32, 5, 5) and y_last.shape == (32, 5) and h.shape == (3, 32, 20)
    torch.testing.assert_close(y_seq[:, -1], y_last)


@pytest.mark.parametrize("cls", [LSTMModel, GRUModel])
def test_sequence_models(cls):
    x = torch.randn(4, 6, 10)
    many = cls(10, 20, 5, num_layers=2, many_to_many=True)
    one = cls(10, 20, 5, num_layers=2, many_to_many=False)
    one.load_state_dict(many.state_dict())
    y_seq, state = many(x)
    y_last, _ = one(x)
    assert y_seq.shape == (4, 6, 5) and y_last.shape == (4, 5)
    torch.testing.assert_close(y_seq[:, -1], y_last)
    # carrying the state over two halves equals one pass
    y_a, s_a = many(x[:, :3])
    y_b, _ = many(x[:, 3:], s_a)
    torch.testing.assert_close(torch.cat([y_a, y_b], 1), y_seq, atol=1e-6, rtol=1e-5)


def test_sequence_model_param_counts():
    # LSTM: 4 * (20 * (10 + 20) + 2 * 20) = 2560, GRU: 3 * (...) = 1920, head 105
    assert sum(p.numel() for p in LSTMModel().parameters()) == 2560 + 105
    assert sum(p.numel() for p in GRUModel().parameters()) == 1920 + 105


def test_bad_input():
    with pytest.raises(ValueError, match=r"expected one step of shape \[B, 10\], got \[32, 9\]"):
        VanillaRNN()(torch.randn(32, 9), torch.zeros(32, 20))
    with pytest.raises(ValueError, match=r"expected a hidden state of shape \[32, 20\], got \[32, 21\]"):
        VanillaRNNCombined()(torch.randn(32, 10), torch.zeros(32, 21))
    with pytest.raises(ValueError, match=r"expected a hidden state of shape \[3, 2, 20\], got \[2, 2, 20\]"):
        DeepVanillaRNN()(torch.randn(2, 10), torch.zeros(2, 2, 20))
    with pytest.raises(ValueError, match=r"expected a sequence of shape \[B, T, 10\], got \[4, 10\]"):
        GRUModel()(torch.randn(4, 10))
    with pytest.raises(ValueError, match="NaN"):
        LSTMModel()(torch.full((1, 2, 10), float("nan")))
    with pytest.raises(ValueError, match=r"expected \(h, c\), each of shape \[1, 1, 20\]"):
        LSTMModel()(torch.randn(1, 2, 10), (torch.zeros(1, 1, 20), torch.zeros(2, 1, 20)))
    with pytest.raises(ValueError, match="expected hidden_dim >= 1, got 0"):
        VanillaRNN(10, 0, 5)


def test_primer_doc_snippets_run(capsys):
    """docs/rnn_primer.md's code blocks run in order and print the seed's parameter counts."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[3] / "docs" / "rnn_primer.md"
    code = "\n".join(re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S))
    exec(compile(code, str(doc), "exec"), {})
    out = capsys.readouterr().out
    assert "Total params: 745" in out and "Total params: 2,365" in out
