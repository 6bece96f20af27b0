"""Atomic file writes: write to a temporary file in the target folder, then rename over the final name.

A reader (or a crash) never sees a half-written file under the final name: either the old file, the new file, or
no file at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_write_with", "atomic_directory", "atomic_torch_save"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path`` and rename it to ``path`` when the block exits without error.

    Args:
        path: final file name; its folder is created if needed.
        mode: ``"w"`` or ``"wb"`` (text or binary).
        kwargs: passed to :func:`open` (``encoding``, ``newline``...).

    On an exception the temporary file is removed and nothing appears under ``path``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports mode 'w' or 'wb', got {mode!r}.")
    with atomic_write_with(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_write_with(path: str | os.PathLike, suffix: str | None = None) -> Iterator[str]:
    """Yield a temporary path for a writer that needs a file name (NIfTI, NRRD, TorchScript, NetCDF...).

    The temporary name keeps the final name's suffixes (``.nii.gz``, ``.seg.nrrd``) so that writers which pick
    the format from the extension behave the same; it is renamed to ``path`` when the block exits without error.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(final.suffixes) if final.suffixes else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name.split('.')[0]}.", suffix=f".tmp{suffix}", dir=final.parent)
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the permissions a plain open() would have
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``path``; when the block exits without error it replaces ``path``
    (an older folder of that name is removed first). On an exception the temporary folder is removed and an
    existing ``path`` stays as it was. For multi-file outputs: DICOM series, Zarr stores, case folders.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes the folder private (0700)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_torch_save(obj: Any, path: str | os.PathLike, save: Callable[[Any, str], None] | None = None) -> None:
    """``torch.save`` (or ``save(obj, tmp_path)``) through a temporary file and a rename."""
    import torch

    saver = save if save is not None else torch.save
    with atomic_write_with(path) as tmp:
        saver(obj, tmp)
