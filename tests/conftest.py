from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Every test starts from the same RNG state and one intra-op thread per pytest-xdist worker."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
