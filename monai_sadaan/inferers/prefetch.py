"""Read the next case while the current one is inferred: a data loader that prepares batches in a background thread.

Reading and preparing a CT (gzip, the orientation, the window, the resize to the network's grid) and inferring and
writing the one before it use different resources (zlib, numpy and PyTorch release the GIL), so a thread is enough,
and the memory stays in one process (one peak to measure). MONAI's ``ThreadDataLoader`` does the same, but an
exception in its thread ends the epoch early without a word: a run would then commit the cases before it as if
nothing had happened. Here it is raised in the consumer, with its own traceback.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from typing import Any

from monai.data import DataLoader

__all__ = ["PrefetchDataLoader", "threads_beside_prefetch", "usable_cores"]

_POLL = 0.05


def threads_beside_prefetch() -> int:
    """Intra-op threads for the model when a loader thread reads the next case beside it: the cores this process
    may use less one (at least one), so that the two do not take cores from each other (a thread team that waits
    for a core stalls: on a busy 2-core machine the 48³ forward took 1.9 s on two threads, 0.43 s on one).
    ``OMP_NUM_THREADS``, when set, is kept."""
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    return max(1, usable_cores() - 1)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; the machine's count where affinity is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


class PrefetchDataLoader(DataLoader):
    """MONAI ``DataLoader`` whose batches are made ``prefetch`` ahead in a background thread.

    While the consumer uses batch ``k``, the thread makes batch ``k + 1`` (and, with ``prefetch`` batches waiting,
    no further). An exception raised while making a batch is raised by the iterator at that batch; stopping the
    iteration early (an exception in the consumer) stops the thread after the batch it is making.

    Args:
        dataset: the dataset.
        prefetch: batches made ahead and kept waiting (>= 1).
        kwargs: as MONAI's ``DataLoader`` (``batch_size``, ``num_workers``, ``collate_fn``...).
    """

    def __init__(self, dataset: Any, prefetch: int = 1, **kwargs: Any) -> None:
        if int(prefetch) < 1:
            raise ValueError(f"expected prefetch >= 1, got {prefetch}")
        super().__init__(dataset, **kwargs)
        self.prefetch = int(prefetch)

    def __iter__(self) -> Iterator[Any]:
        source = super().__iter__()
        waiting: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(message: tuple[str, Any]) -> bool:
            while not stop.is_set():
                try:
                    waiting.put(message, timeout=_POLL)
                    return True
                except queue.Full:
                    continue
            return False

        def make() -> None:
            try:
                for batch in source:
                    if not put(("batch", batch)):
                        return
                put(("end", None))
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                put(("error", e))

        thread = threading.Thread(target=make, name="sadaan-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = waiting.get()
                if kind == "batch":
                    yield value
                elif kind == "end":
                    return
                else:
                    raise value
        finally:
            stop.set()
            while thread.is_alive():
                try:  # free a thread blocked on a full queue
                    waiting.get(timeout=_POLL)
                except queue.Empty:
                    pass
            thread.join()
