from __future__ import annotations

import os
import socket

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Every test starts from the same RNG state and one intra-op thread per pytest-xdist worker."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (torchrun's --master_port in tests: a fixed port
    collides with another run of the same test on the machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
