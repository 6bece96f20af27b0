"""The same seed gives bit-identical results on CPU: SADAAn inference and a few training iterations, GRU training
steps, and the seeded phantom generator. Each run happens twice in the same process after re-seeding."""

from __future__ import annotations

import numpy as np
import torch
from monai.utils import set_determinism

STRUCTURES = ["a", "b", "c"]


def _sadaan_run(seed: int, steps: int = 3) -> tuple[dict[str, torch.Tensor], list[float], dict[str, torch.Tensor]]:
    from monai_sadaan import SpatialAttentionLoss, SpatialAttentionMedicalSegmenter

    set_determinism(seed=seed)
    net = SpatialAttentionMedicalSegmenter(
        num_structures=3, spatial_size=(16, 16, 16), features=(2, 4, 4, 4, 4), feature_channels=4
    )
    loss_fn = SpatialAttentionLoss(STRUCTURES)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(2, 1, 16, 16, 16)
    seg = (torch.rand(2, 3, 16, 16, 16) > 0.7).float()
    targets = {"segmentation_targets": seg, "presence_targets": torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])}
    losses = []
    net.train()
    for _ in range(steps):  # dropout draws from the seeded generator too
        opt.zero_grad()
        total = loss_fn(net(x), targets)["total"]
        total.backward()
        opt.step()
        losses.append(float(total))
    net.eval()
    with torch.no_grad():
        out = net(x[:1])
    set_determinism(seed=None)
    return out, losses, {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_sadaan_inference_and_training_are_bit_identical_for_a_seed():
    out_a, losses_a, state_a = _sadaan_run(7)
    out_b, losses_b, state_b = _sadaan_run(7)
    assert losses_a == losses_b and all(np.isfinite(losses_a))
    assert losses_a[-1] != losses_a[0]  # the steps did train
    assert state_a.keys() == state_b.keys() and all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert out_a.keys() == out_b.keys() and all(torch.equal(out_a[k], out_b[k]) for k in out_a)
    out_c, losses_c, _ = _sadaan_run(8)  # and the seed matters
    assert losses_c != losses_a


def _gru_run(seed: int) -> tuple[list[float], torch.Tensor]:
    from seq_models.networks.gru_regression import PaddedGRURegressor

    torch.manual_seed(seed)
    model = PaddedGRURegressor(input_size=3, hidden_size=8, num_layers=2, dropout=0.2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 6, 3), torch.randn(4, 1)
    lengths = torch.tensor([6, 3, 1, 5])
    losses = []
    model.train()
    for _ in range(4):
        opt.zero_grad()
        pred = model(x, lengths).reshape(4, -1)[:, :1]
        loss = torch.nn.functional.mse_loss(pred, y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    model.eval()
    with torch.no_grad():
        return losses, model(x, lengths)


def test_gru_training_and_inference_are_bit_identical_for_a_seed():
    losses_a, pred_a = _gru_run(3)
    losses_b, pred_b = _gru_run(3)
    assert losses_a == losses_b and torch.equal(pred_a, pred_b)
    assert _gru_run(4)[0] != losses_a


def test_phantom_generator_is_a_function_of_its_seed():
    from monai_sadaan.data import generate_phantom

    a, b = generate_phantom("normal", seed=5, shape=16), generate_phantom("normal", seed=5, shape=16)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)
    assert not np.array_equal(a.image, generate_phantom("normal", seed=6, shape=16).image)
