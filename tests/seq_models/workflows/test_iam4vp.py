"""The IAM4VP trainer and evaluator (:mod:`seq_models.workflows.iam4vp`) run through MONAI's engines."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from seq_models.data.cloud_generator import generate_cloud_frames
from seq_models.data.satellite import SatelliteWindowDataset
from seq_models.workflows import create_iam4vp_evaluator, create_iam4vp_trainer
from tests.seq_models.small_models import small_iam4vp


def test_trainer_and_evaluator_run_through_monai_engines():
    torch.manual_seed(0)
    frames = generate_cloud_frames(24, 16, 24, num_channels=2, missing_fraction=0.05, seed=3)
    loader = DataLoader(SatelliteWindowDataset(frames, 3, 2, stride=4), batch_size=2)
    model = small_iam4vp().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = create_iam4vp_trainer(model, loader, optimizer, max_epochs=2, steps=2, gdl_weight=0.1, step_weights=[2.0, 1.0])
    trainer.run()
    assert {"loss_total", "loss_mae", "loss_gdl"} <= set(trainer.state.metrics)
    assert trainer.state.output["pred"].shape[1:] == (2, 2, 16, 24)
    changed = [k for k in before if not torch.equal(before[k], model.state_dict()[k])]
    assert "lp.enc.0.conv.weight" in changed and "mask_token" in changed
    evaluator = create_iam4vp_evaluator(model, loader, steps=2)
    evaluator.run()
    assert 0 < evaluator.state.metrics["val_mae"] < 1 and 0 < evaluator.state.metrics["val_mse"] < 1
    assert -1 <= evaluator.state.metrics["val_ssim"] <= 1
