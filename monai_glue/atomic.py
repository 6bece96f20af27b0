"""Atomic file and folder writes, and the ownership rules that keep them from deleting what they did not write.

* :func:`atomic_open`, :func:`atomic_write_with`, :func:`atomic_torch_save`: write to a temporary file in the target
  folder, then rename over the final name. A reader (or a crash) never sees a half-written file under the final
  name: either the old file, the new file, or no file at all.
* :func:`atomic_directory`: build a folder (a DICOM series, a Zarr store) in a hidden staging folder beside the
  target and rename it into place. An existing folder of that name is replaced only when an earlier
  :func:`atomic_directory` wrote it (a hidden side-car ``.<name>.sadaan-directory.json`` lists its files) and it
  holds nothing else, or when it is empty; otherwise :class:`OutputFolderError` names the folder and what it holds.
* Staging folders (``.<name>.partial-<host>.<pid>.<random>``) and the folders that hold a replaced result during a
  swap (``.<name>.old-...``) carry a ``.sadaan-staging.json`` marker with the writing process; a later write into the
  same folder removes those left by a process that is gone (:func:`remove_stale_staging`), putting back a replaced
  result whose new version never arrived.
* :func:`folder_lock`: an advisory ``flock`` on a folder that serialises the check-and-swap of concurrent writers
  (released by the kernel when the process exits, even on a crash).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "OutputFolderError",
    "STAGING_MARKER",
    "atomic_open",
    "atomic_write_with",
    "atomic_directory",
    "atomic_torch_save",
    "folder_lock",
    "make_staging_dir",
    "remove_stale_staging",
    "swap_in",
    "list_entries",
    "unexpected_entries",
    "describe_entries",
    "live_staging",
]

STAGING_MARKER = ".sadaan-staging.json"
"""Marker inside every staging / holding folder: format, kind (``partial`` or ``old``), pid, host, start time."""
STAGING_FORMAT = "sadaan-staging/1"
DIRECTORY_FORMAT = "sadaan-directory/1"


class OutputFolderError(ValueError):
    """An output would replace or write into something this tool did not write (or an input); nothing was written."""


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


# ---------------------------------------------------------------------------------------------- staging folders
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40] or "host"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def make_staging_dir(parent: str | os.PathLike, name: str, kind: str = "partial") -> Path:
    """Create a hidden staging folder ``parent/.<name>.<kind>-<host>.<pid>.<random>/`` holding a
    :data:`STAGING_MARKER` that names this process, so that a later writer can tell a stale one from a live one.

    Args:
        parent: the folder the result goes into (staging stays on its filesystem: the final step is a rename).
        name: the name of the result (for the staging folder's name only).
        kind: ``"partial"`` (a result being written) or ``"old"`` (holds a replaced result during a swap: a stale
            one is put back by :func:`remove_stale_staging` if its new version never arrived).

    Returns:
        the staging folder; what goes into it are its non-hidden entries (``staging/<name>`` by convention).
    """
    if kind not in ("partial", "old"):
        raise ValueError(f"expected staging kind 'partial' or 'old', got {kind!r}")
    folder = Path(tempfile.mkdtemp(prefix=f".{name}.{kind}-{_host()}.{os.getpid()}.", dir=parent))
    marker = {
        "format": STAGING_FORMAT, "kind": kind, "name": name, "pid": os.getpid(), "host": _host(), "started": _now(),
    }  # fmt: skip
    (folder / STAGING_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    return folder


def _read_staging_marker(folder: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((folder / STAGING_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != STAGING_FORMAT:
        return None
    return marker


def _pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` runs on this host; ``True`` when that cannot be told (never clean up then)."""
    if not isinstance(pid, int) or pid <= 0:
        return True
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def live_staging(parent: str | os.PathLike) -> list[dict[str, Any]]:
    """Markers of the staging folders in ``parent`` whose process still runs (or may run: another host)."""
    found = []
    p = Path(parent)
    if not p.is_dir():
        return found
    for child in p.iterdir():
        if child.name.startswith(".") and child.is_dir() and not child.is_symlink():
            marker = _read_staging_marker(child)
            if marker is not None and (marker.get("host") != _host() or _pid_alive(marker.get("pid"))):
                found.append({**marker, "folder": str(child)})
    return found


def remove_stale_staging(parent: str | os.PathLike) -> list[Path]:
    """Remove the staging folders in ``parent`` left by a process of this host that is gone.

    Only hidden folders holding a :data:`STAGING_MARKER` are looked at; one from another host, or whose process
    still runs, is left alone. A stale ``old`` folder first puts each result it holds back under its own name when
    nothing took that name (the process died between the two renames of a swap).

    Returns:
        the folders removed.
    """
    removed: list[Path] = []
    p = Path(parent)
    if not p.is_dir():
        return removed
    for child in sorted(p.iterdir()):
        if not (child.name.startswith(".") and child.is_dir() and not child.is_symlink()):
            continue
        marker = _read_staging_marker(child)
        if marker is None or marker.get("host") != _host() or _pid_alive(marker.get("pid")):
            continue
        if marker.get("kind") == "old":
            for held in child.iterdir():
                target = p / held.name
                if not held.name.startswith(".") and not os.path.lexists(target):
                    os.replace(held, target)  # the new version never arrived: the earlier result goes back
        shutil.rmtree(child, ignore_errors=True)
        if not os.path.lexists(child):
            removed.append(child)
    return removed


def swap_in(new: str | os.PathLike, final: str | os.PathLike) -> None:
    """Put folder ``new`` at ``final``, replacing an existing ``final`` with as short a gap as two renames.

    The caller checks that ``final`` may be replaced and holds :func:`folder_lock` on ``final``'s parent. The
    replaced folder waits in a marked ``old`` staging folder until the new one is in place, so that a crash between
    the two renames leaves it recoverable (:func:`remove_stale_staging` puts it back).
    """
    new, final = Path(new), Path(final)
    if not os.path.lexists(final):
        os.replace(new, final)
        return
    holder = make_staging_dir(final.parent, final.name, kind="old")
    os.replace(final, holder / final.name)
    try:
        os.replace(new, final)
    except BaseException:
        os.replace(holder / final.name, final)  # put the previous result back
        shutil.rmtree(holder, ignore_errors=True)
        raise
    shutil.rmtree(holder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- locking
_HELD: dict[str, int] = {}  # folder -> the thread of this process that holds its lock
@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, blocking: bool = True, timeout: float | None = None) -> Iterator[bool]:
    """Hold an exclusive advisory lock (``flock``) on ``folder`` for the block.

    The kernel releases the lock when the process exits, even on a crash, so a lock is never left behind and no
    lock file is written. Where ``fcntl`` is missing (Windows) the block runs unlocked.

    Args:
        folder: an existing folder.
        blocking: wait for the lock; otherwise try for ``timeout`` seconds (default: once).
        timeout: with ``blocking=False``, how long to keep trying.

    Yields:
        ``True`` when the lock is held, ``False`` when it could not be taken (non-blocking) or locks are unsupported.

    Raises:
        RuntimeError: a blocking request for a folder the calling thread already holds (it would wait for itself;
            a started inference run holds its output folder: write through the run).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield False
        return
    key = os.path.realpath(folder)
    if _HELD.get(key) == threading.get_ident():
        if blocking:
            raise RuntimeError(
                f"expected {folder} to be free, this thread already holds its lock (a started InferenceRun writes "
                "there: write through the run, or after it ends)"
            )
        yield False
        return
    fd = os.open(str(folder), os.O_RDONLY)
    try:
        held = False
        if blocking:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = True
        else:
            deadline = time.monotonic() + (timeout or 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.05)
        if held:
            _HELD[key] = threading.get_ident()
        yield held
    finally:
        if held:
            _HELD.pop(key, None)
        os.close(fd)  # releases the lock


# ---------------------------------------------------------------------------------------------- ownership
def list_entries(folder: str | os.PathLike, recursive: bool = True) -> list[str]:
    """Relative POSIX paths of every file, folder and link in ``folder`` (links are not followed), sorted."""
    root = Path(folder)
    out: list[str] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            rel = Path(dirpath).relative_to(root)
            out += [(rel / n).as_posix() for n in dirnames + filenames]
    else:
        out = [p.name for p in root.iterdir()]
    return sorted(out)


def unexpected_entries(folder: str | os.PathLike, expected: Iterable[str], recursive: bool = True) -> list[str]:
    """Entries of ``folder`` (see :func:`list_entries`) that are not in ``expected`` (nor a folder above one)."""
    allowed = set()
    for e in expected:
        parts = Path(e).parts
        allowed.update(Path(*parts[: i + 1]).as_posix() for i in range(len(parts)))
    return [e for e in list_entries(folder, recursive) if e not in allowed]


def describe_entries(entries: list[str], limit: int = 5) -> str:
    """``"3 entries: a, b, c"`` with at most ``limit`` names shown."""
    shown = ", ".join(entries[:limit]) + (f", ... ({len(entries) - limit} more)" if len(entries) > limit else "")
    return f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'} this tool did not write: {shown}"


def _sidecar(final: Path) -> Path:
    return final.parent / f".{final.name}.sadaan-directory.json"


def _directory_problem(final: Path) -> str | None:
    """Why ``final`` may not be replaced by :func:`atomic_directory`, or ``None``."""
    if not os.path.lexists(final):
        return None
    if final.is_symlink() or not final.is_dir():
        kind = "link" if final.is_symlink() else "file"
        return f"expected a new folder or one written by this tool at {final}, found a {kind}"
    entries = list_entries(final)
    if not entries:
        return None
    try:
        marker = json.loads(_sidecar(final).read_text(encoding="utf-8"))
        listed = marker["files"] if isinstance(marker, dict) and marker.get("format") == DIRECTORY_FORMAT else None
    except (OSError, ValueError, KeyError):
        listed = None
    if listed is None:
        return (
            f"expected a new folder or one written by this tool at {final}, found a folder that holds "
            f"{describe_entries(entries)} (no {_sidecar(final).name} beside it); move or delete it, or write elsewhere"
        )
    extra = unexpected_entries(final, listed)
    if extra:
        return (
            f"expected only the files this tool wrote in {final}, found {describe_entries(extra)}; "
            "move them away or write elsewhere"
        )
    return None


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder; when the block exits without error it is renamed to ``path``.

    For multi-file outputs: DICOM series, Zarr stores. An existing ``path`` is replaced only when it is empty or was
    written by an earlier :func:`atomic_directory` and holds nothing but what that wrote (listed in a hidden
    ``.<name>.sadaan-directory.json`` beside it); anything else raises :class:`OutputFolderError`, before the
    block runs and again, under :func:`folder_lock`, before the swap. On an exception the staging folder is removed
    and an existing ``path`` stays as it was.

    Raises:
        OutputFolderError: ``path`` is a file or link, or a folder holding files this tool did not write.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(final.parent):
        problem = _directory_problem(final)
    if problem:
        raise OutputFolderError(problem)
    staging = make_staging_dir(final.parent, final.name)
    tmp = staging / final.name
    tmp.mkdir()
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        listed = list_entries(tmp)
        with folder_lock(final.parent):
            remove_stale_staging(final.parent)
            problem = _directory_problem(final)
            if problem:
                raise OutputFolderError(problem)
            sidecar = {"format": DIRECTORY_FORMAT, "name": final.name, "written": _now(), "files": listed}
            with atomic_open(_sidecar(final), "w", encoding="utf-8") as f:
                json.dump(sidecar, f)
            swap_in(tmp, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
