"""The prefetching loader of :mod:`monai_sadaan.inferers.prefetch` and the thread budget beside it: every batch in
order from one thread, the next case read while this one is used, errors at their batch; the grid transforms on
one thread."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from monai_sadaan.inferers import PrefetchDataLoader


# ---------------------------------------------------------------------------------------------------- prefetch
class _Slow(torch.utils.data.Dataset):
    def __init__(self, n, fail_at=None, delay=0.0):
        self.n, self.fail_at, self.delay, self.made = n, fail_at, delay, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"case {i} could not be read")
        time.sleep(self.delay)
        self.made.append((i, threading.current_thread().name))
        return {"x": torch.tensor([i])}


def test_prefetch_loader_yields_every_batch_in_order_from_a_thread():
    data = _Slow(5)
    got = [int(b["x"]) for b in PrefetchDataLoader(data, batch_size=1)]
    assert got == [0, 1, 2, 3, 4]
    assert {name for _, name in data.made} == {"sadaan-prefetch"}


def test_prefetch_loader_reads_the_next_case_while_this_one_is_used():
    data = _Slow(3, delay=0.2)
    start = time.perf_counter()
    for _ in PrefetchDataLoader(data, batch_size=1):
        time.sleep(0.2)  # the consumer's work on this case
    # serial: 3 x (0.2 + 0.2) = 1.2 s; overlapped: 0.2 + 3 x 0.2 = 0.8 s
    assert time.perf_counter() - start < 1.1


def test_prefetch_loader_raises_an_error_of_the_thread_at_its_batch():
    seen = []
    with pytest.raises(ValueError, match="case 2 could not be read"):
        for b in PrefetchDataLoader(_Slow(4, fail_at=2), batch_size=1):
            seen.append(int(b["x"]))
    assert seen == [0, 1]  # the epoch does not end quietly after case 1 (MONAI's ThreadDataLoader's behaviour)


def test_prefetch_loader_stops_its_thread_when_the_consumer_stops():
    before = threading.active_count()
    loader = PrefetchDataLoader(_Slow(50, delay=0.01), batch_size=1)
    for i, _ in enumerate(loader):
        if i == 2:
            break
    time.sleep(0.1)
    assert threading.active_count() <= before
    with pytest.raises(ValueError, match="prefetch >= 1"):
        PrefetchDataLoader(_Slow(1), prefetch=0)


def test_threads_beside_prefetch_leave_a_core_to_the_reader(monkeypatch):
    import os

    from monai_sadaan.inferers import threads_beside_prefetch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert threads_beside_prefetch() == 7
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert threads_beside_prefetch() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads_beside_prefetch() == torch.get_num_threads()


def test_grid_transforms_run_on_one_thread_and_restore_the_setting():
    from monai_sadaan.transforms.spatial import functional as network_grid

    before = torch.get_num_threads()
    seen = []
    with network_grid.one_thread():
        seen.append(torch.get_num_threads())
    assert seen == [1] and torch.get_num_threads() == before
