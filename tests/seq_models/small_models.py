"""Small models shared by the seq_models tests."""

from __future__ import annotations

import torch

from seq_models import PaddedGRURegressor
from seq_models.networks.iam4vp import IAM4VP


def small_iam4vp(shape=(3, 2, 16, 24), latent=4, time_dim=8, gamma=0.5, prior_std=0.5) -> IAM4VP:
    """A small IAM4VP in eval mode whose time and prior paths show in the output: every block's layer scale
    ``gamma`` set to ``gamma`` (not the near-zero init) and the mask token drawn with std ``prior_std``."""
    model = IAM4VP(
        shape_in=shape, latent_channels=latent, num_convolutions_space=4, num_convolutions_time=2, time_dim=time_dim
    )
    with torch.no_grad():
        for block in model.hid.st_block:
            block.gamma.fill_(gamma)
        model.mask_token.normal_(std=prior_std)
    return model.eval()


def trained_stats(model: PaddedGRURegressor, features: int, scale: float = 3.0) -> PaddedGRURegressor:
    """Give the batch norm non-trivial running statistics, then switch to eval mode."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(6, 7, features) * scale + 1.5)
    return model.eval()
