from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seq_models.data.windows import RegularDataset, SequentialDataset, SlidingWindowDataset

SEQ6 = [[1.0, 0.0], [0.5, 1.5], [1.0, 2.0], [2.0, 1.0], [1.5, 0.5], [2.5, 1.5]]


def test_regular_dataset_seed_example():
    ds = RegularDataset(np.array([[1.1, 2.1], [2.5, 3.5], [0.5, 1.5]]), np.array([0, 1, 0]))
    items = [(d, label) for d, label in DataLoader(ds, batch_size=1, shuffle=False)]
    assert len(items) == 3
    torch.testing.assert_close(items[1][0], torch.tensor([[2.5, 3.5]]))
    assert items[1][1].dtype == torch.int64 and items[1][1].tolist() == [1]
    with pytest.raises(ValueError, match="expected as many labels as samples, got 2 labels"):
        RegularDataset(torch.zeros(3, 2), torch.zeros(2))


def test_sequential_without_overlap_seed_example():
    ds = SequentialDataset(torch.tensor(SEQ6), window=3, labels=torch.tensor([0, 1]))
    assert len(ds) == 2
    batches = list(DataLoader(ds, batch_size=1, shuffle=False))
    torch.testing.assert_close(batches[0][0], torch.tensor([SEQ6[:3]]))
    torch.testing.assert_close(batches[1][0], torch.tensor([SEQ6[3:]]))
    assert [b[1].item() for b in batches] == [0, 1]


def test_sequential_with_overlap_seed_example():
    data = np.array(SEQ6[:5], dtype=np.float64)
    ds = SlidingWindowDataset(data, window=3, stride=1, labels=[0, 1, 0])
    assert len(ds) == 3
    for k in range(3):
        x, y = ds[k]
        assert x.dtype == torch.float32
        torch.testing.assert_close(x, torch.tensor(SEQ6[k : k + 3]))
        assert y.item() == [0, 1, 0][k]
    with pytest.raises(ValueError, match="expected 3 labels \\(one per window\\), got 2"):
        SlidingWindowDataset(data, window=3, labels=[0, 1])


def test_window_stride_horizon_targets():
    series = torch.arange(10.0)
    ds = SlidingWindowDataset(series, window=4, stride=3, horizon=1)
    # starts 0, 3 (6 would need steps 6..10, beyond the last target)
    assert ds.starts == [0, 3] and len(ds) == 2
    x, y = ds[1]
    torch.testing.assert_close(x, torch.tensor([3.0, 4.0, 5.0, 6.0]))
    torch.testing.assert_close(y, torch.tensor([4.0, 5.0, 6.0, 7.0]))
    last = SlidingWindowDataset(series, window=4, stride=3, horizon=2, target_mode="last")
    assert last[0][1].item() == 5.0 and last[-1][1].item() == 8.0


def test_partial_last_window_is_padded_with_its_length():
    series = torch.arange(10.0)[:, None].repeat(1, 2)
    ds = SlidingWindowDataset(series, window=4, stride=4, targets=torch.arange(10.0) * 10, drop_last=False, as_dict=True)
    assert len(ds) == 3
    item = ds[2]
    assert item["lengths"].item() == 2
    torch.testing.assert_close(item["image"][:, 0], torch.tensor([8.0, 9.0, 0.0, 0.0]))
    torch.testing.assert_close(item["target"], torch.tensor([80.0, 90.0, 0.0, 0.0]))
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["image"].shape == (3, 4, 2) and batch["lengths"].tolist() == [4, 4, 2]


def test_bad_input():
    with pytest.raises(ValueError, match="expected window >= 1"):
        SlidingWindowDataset(torch.zeros(5), window=0)
    with pytest.raises(ValueError, match="expected a series of at least window \\+ horizon = 7 steps, got 5"):
        SlidingWindowDataset(torch.zeros(5), window=4, horizon=3)
    with pytest.raises(ValueError, match="expected a finite series, got NaN at 1 position"):
        SlidingWindowDataset(torch.tensor([0.0, float("nan"), 1.0]), window=2)
    with pytest.raises(ValueError, match="expected targets of length 5"):
        SlidingWindowDataset(torch.zeros(5), window=2, targets=torch.zeros(4))
    with pytest.raises(TypeError, match="fixes stride"):
        SequentialDataset(torch.zeros(6), window=3, stride=1)
    with pytest.raises(IndexError, match=r"expected a window index in \[0, 2\), got 2"):
        SequentialDataset(torch.zeros(6), window=3)[2]
