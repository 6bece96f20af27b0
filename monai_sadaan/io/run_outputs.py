"""Ownership of output folders, and an inference run that writes all of its cases or none.

**Case folders are marked.** Every case folder :class:`~monai_sadaan.io.SADAAnCaseWriter` writes holds a hidden
``.sadaan-case.json`` (:data:`CASE_MARKER`): format tag, case name, source input (absolute path, or ``null`` when
the caller gave none), run id, time, tool version and the list of files written. An existing case folder is
replaced only when (:func:`case_folder_problems`)

* it carries the marker, written for the same case name,
* for the same input (same source path; when either side does not know its source, the case name alone decides),
* and it holds nothing but the files its marker lists (the demo's overview PNG is added with
  :func:`register_case_files`).

Anything else (a folder of the user's own files, an input, a folder from a version before the marker) is refused
with :class:`~monai_glue.atomic.OutputFolderError`, naming the folder and what it holds; nothing is deleted.

**A run is all or nothing.** :class:`InferenceRun` (created by the bundle's ``inference.json``) checks, before the
model runs and before anything is written, that the output folder is not the input folder, that no case folder is,
holds or lies inside an input, that every existing case folder may be replaced and that the case names are unique;
every violation is reported in one error. During the run each case is written into a hidden staging folder
``output_dir/.sadaan-run.partial-<host>.<pid>.<random>/<case>/``; only when every case succeeded are the case folders
renamed into place (the commit, a few renames on one filesystem). On any failure the staging folder is removed:
nothing of the run appears under the final names and earlier results stay as they were. A run that stops before
writing any case leaves the output folder as it was; one that stops later writes the run manifest with
``"status": "failed"``.

**Run manifest** ``output_dir/sadaan_run.json`` (:data:`RUN_MANIFEST`), rewritten by each run that writes::

    {"format": "sadaan-run/1", "run_id": ..., "status": "complete" | "failed", "started": ..., "finished": ...,
     "pid": ..., "host": ..., "output_dir": ..., "dataset_dir": ...,
     "versions": {"monai_sadaan": ..., "monai": ..., "torch": ..., "python": ...},
     "inputs": [{"case", "source", "input_flags"}, ...],
     "error": null | {"type", "errno", "message"},
     "results": [{"case", "run_id", "source", "this_run"}, ...],  # every marked case folder now in output_dir
     "timing": {"preflight_seconds", "inference_seconds", "commit_seconds",
                "cases": [{"case", "seconds"}, ...]}}   # the cases written, in the order they were written

**Progress and timing.** The inputs' pre-flight (:meth:`InferenceRun.inputs`) is timed as a whole; each case is
timed from the end of the case before it (or from the start of the run) to the end of its own writing, so the case
seconds add up to the run: the first case's include the model's start (checkpoint loading), and a case read while
the one before it was inferred (the bundle's loader reads one case ahead) does not count its reading twice. While
the run goes, a progress bar on a terminal (``tqdm``, on stderr), or one log line per case otherwise, says which
case was written, in how many seconds; at the end one log line names every case's seconds (also in the manifest).

**Concurrency.** The run holds an advisory lock (``flock``) on the output folder from its start to its end; a
second run into the same folder is refused, naming the process that holds it. The plain writer takes the same
lock around its check-and-swap, so concurrent writers of one case never see each other's half-swapped folders.

**Stale staging.** A killed run leaves its staging folder; the next write into the same output folder removes the
staging folders whose process is gone (same host, pid not running), and only those.

**One-line causes.** A run that fails for a known cause (no space, quota, permission, read-only filesystem, or one
of the project's input/output refusals) raises :class:`InferenceRunFailed`, a :class:`SystemExit` whose message is
one line (``error: ...``): the command line prints that line and exits with status 1, not a traceback.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
import platform
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_glue.atomic import (
    OutputFolderError,
    atomic_open,
    describe_entries,
    folder_lock,
    live_staging,
    list_entries,
    make_staging_dir,
    remove_stale_staging,
    unexpected_entries,
)

__all__ = [
    "CASE_MARKER",
    "CASE_FORMAT",
    "RUN_MANIFEST",
    "RUN_FORMAT",
    "OutputFolderError",
    "InferenceRun",
    "InferenceRunFailed",
    "case_folder_problems",
    "read_case_marker",
    "write_case_marker",
    "register_case_files",
    "parse_input_flags",
    "describe_failure",
]

logger = logging.getLogger(__name__)

CASE_MARKER = ".sadaan-case.json"
"""Hidden file in every case folder this tool writes: what it was written for and which files it holds."""
CASE_FORMAT = "sadaan-case/1"
RUN_MANIFEST = "sadaan_run.json"
"""The run manifest in the output folder."""
RUN_FORMAT = "sadaan-run/1"
_RESERVED_NAMES = (RUN_MANIFEST, "sadaan_inference.log")  # files of the run / of the Slicer module in output_dir
_HOW_TO_PROCEED = "move or delete it, or choose another output folder (--output_dir)"

_ERRNO_CAUSES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _tool_version() -> str:
    try:
        from monai_sadaan import __version__
    except ImportError:  # pragma: no cover
        return "unknown"
    return str(__version__)


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _within(inner: str, outer: str) -> bool:
    """Whether real path ``inner`` is ``outer`` or lies inside it."""
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


# ---------------------------------------------------------------------------------------------- case marker
def read_case_marker(case_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The case folder's :data:`CASE_MARKER` as a dict, or ``None`` when it is missing or not this tool's."""
    try:
        marker = json.loads((Path(case_dir) / CASE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != CASE_FORMAT or not isinstance(marker.get("files"), list):
        return None
    return marker


def write_case_marker(
    case_dir: str | os.PathLike,
    case: str,
    source: str | os.PathLike | None,
    files: Iterable[str],
    run_id: str | None = None,
) -> Path:
    """Write the :data:`CASE_MARKER` of a case folder (atomically); ``files`` are names inside ``case_dir``."""
    marker = {
        "format": CASE_FORMAT,
        "case": case,
        "source": os.path.abspath(os.fspath(source)) if source is not None else None,
        "run_id": run_id,
        "written": _now(),
        "tool": f"monai_sadaan {_tool_version()}",
        "files": sorted(set(files)),
    }
    path = Path(case_dir) / CASE_MARKER
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(marker, f, indent=2)
        f.write("\n")
    return path


def case_folder_problems(
    case_dir: str | os.PathLike, case: str, source: str | os.PathLike | None = None
) -> list[str]:
    """Why the result of ``case`` (from input ``source``) may not be written at ``case_dir``; ``[]`` when it may.

    It may when ``case_dir`` does not exist, is an empty folder, or is a folder this tool wrote for the same case
    and input that holds nothing but the files its marker lists (see the module docstring). A case folder that is,
    holds or lies inside ``source`` is refused in any case.
    """
    folder = Path(case_dir)
    problems = []
    if source is not None:
        real_dir, real_src = _real(folder), _real(source)
        if _within(real_dir, real_src) or _within(real_src, real_dir):
            relation = "is" if real_dir == real_src else ("lies inside" if _within(real_dir, real_src) else "holds")
            problems.append(
                f"case folder {folder} {relation} its own input {source}: expected outputs apart from the inputs, "
                "choose an output folder (--output_dir) outside the input folder"
            )
    if not os.path.lexists(folder):
        return problems
    if folder.is_symlink() or not folder.is_dir():
        kind = "link" if folder.is_symlink() else "file"
        return problems + [
            f"expected case folder {folder} to be new or an earlier result of this tool, found a {kind}; "
            + _HOW_TO_PROCEED
        ]
    entries = list_entries(folder)
    if not entries:
        return problems
    marker = read_case_marker(folder)
    if marker is None and not os.path.lexists(folder):
        return problems  # swapped away by a concurrent writer while looked at: the check under the lock decides
    if marker is None:
        return problems + [
            f"case folder {folder} exists and holds {describe_entries(entries)} (it has no {CASE_MARKER}: not "
            f"written by monai_sadaan, or by a version before case folders were marked); expected a new folder or an "
            f"earlier result of this tool; {_HOW_TO_PROCEED}"
        ]
    if marker.get("case") != case:
        problems.append(
            f"case folder {folder} holds this tool's result for case {marker.get('case')!r}, expected case {case!r}; "
            f"{_HOW_TO_PROCEED}"
        )
    old_source = marker.get("source")
    if source is not None and old_source is not None and _real(old_source) != _real(source):
        problems.append(
            f"case folder {folder} holds the result for input {old_source}, this input of case {case!r} is "
            f"{os.path.abspath(os.fspath(source))} (two inputs, one case name?); {_HOW_TO_PROCEED}"
        )
    extra = unexpected_entries(folder, [*marker["files"], CASE_MARKER])
    if extra:
        problems.append(
            f"case folder {folder} holds {describe_entries(extra)} besides its result; expected only the files its "
            f"{CASE_MARKER} lists; move them away, or choose another output folder (--output_dir)"
        )
    return problems


def register_case_files(case_dir: str | os.PathLike, names: Iterable[str]) -> list[str]:
    """Add files written later into a case folder (an overview PNG) to its marker, so that a later run may
    replace the folder. Returns the marker's file list.

    Raises:
        OutputFolderError: the folder has no marker of this tool, or a name is not a file in the folder.
    """
    folder = Path(case_dir)
    with folder_lock(folder.parent):
        marker = read_case_marker(folder)
        if marker is None:
            raise OutputFolderError(f"expected a case folder written by this tool, {folder} has no {CASE_MARKER}")
        names = list(names)
        bad = [n for n in names if Path(n).name != n or n.startswith(".") or not (folder / n).is_file()]
        if bad:
            raise OutputFolderError(f"expected names of files inside {folder}, got {bad}")
        files = sorted(set(marker["files"]) | set(names))
        marker = {**marker, "files": files}
        with atomic_open(folder / CASE_MARKER, "w", encoding="utf-8") as f:
            json.dump(marker, f, indent=2)
            f.write("\n")
    return files


# ---------------------------------------------------------------------------------------------- input flags
def parse_input_flags(value: Any) -> list[dict[str, str]]:
    """The input flags of a datalist item as a list of ``{"code", "message"}``.

    Args:
        value: ``None``, ``""``, a JSON string of such a list (the datalist form), the list itself, or either one
            wrapped in a one-element list (a batch of one after collation).

    Raises:
        ValueError: anything else, naming what came.
    """
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]  # a batch of one
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    raw = value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise ValueError(f"expected input_flags as a JSON list of {{code, message}}, got {raw!r}") from e
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected input_flags as a list of {{code, message}}, got {raw!r}")
    flags = []
    for item in value:
        if not (isinstance(item, Mapping) and all(isinstance(item.get(k), str) for k in ("code", "message"))):
            raise ValueError(f"expected each input flag as {{'code': str, 'message': str}}, got {item!r}")
        flags.append({"code": item["code"], "message": item["message"]})
    return flags


# ---------------------------------------------------------------------------------------------- failures
class InferenceRunFailed(SystemExit):
    """A run failed for a known cause; the command line prints ``error: <message>`` (one line) and exits with 1.

    Attributes:
        message: the one-line cause, without the ``error:`` prefix.
        cause: the original exception.
    """

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(f"error: {message}")
        self.message = message
        self.cause = cause


def _refusal_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [OutputFolderError]
    with contextlib.suppress(ImportError):
        from monai_sadaan.data.image_folder import InputImageError

        types.append(InputImageError)
    with contextlib.suppress(ImportError):
        from monai_sadaan.data.datalist import DatalistError

        types.append(DatalistError)
    with contextlib.suppress(ImportError):
        from monai_glue.checkpoint import CheckpointError

        types.append(CheckpointError)
    return tuple(types)


def _chain(error: BaseException) -> list[BaseException]:
    seen, out = set(), []
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def describe_failure(
    error: BaseException, writing: str | None = None, output_dir: str | os.PathLike | None = None
) -> str | None:
    """One line naming a known cause of ``error`` (searched through its chain of causes), or ``None``.

    Known: an :class:`OSError` with ``errno`` ENOSPC, EDQUOT, EACCES, EPERM or EROFS, and the project's refusals
    (:class:`OutputFolderError`, ``InputImageError``, ``DatalistError``, ``CheckpointError``).

    Args:
        error: the exception.
        writing: the case being written when it happened, if any.
        output_dir: the run's output folder.
    """
    refusals = _refusal_types()
    for e in _chain(error):
        if isinstance(e, OSError) and e.errno in _ERRNO_CAUSES:
            name = errno.errorcode.get(e.errno, str(e.errno))
            if writing is not None:
                where = f"while writing case {writing!r} into {output_dir}"
            else:
                where = f"at {e.filename}" if e.filename else (f"in {output_dir}" if output_dir else "")
            return " ".join(f"{_ERRNO_CAUSES[e.errno]} ({name}) {where}".split())
        if isinstance(e, refusals):
            return " ".join(str(e).split())
    return None


def _versions() -> dict[str, str]:
    out = {"monai_sadaan": _tool_version(), "python": platform.python_version()}
    for name in ("monai", "torch"):
        with contextlib.suppress(Exception):
            out[name] = str(__import__(name).__version__)
    return out


def _stderr_is_terminal() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def _raise_directly(engine: Any) -> None:
    """Let an Ignite engine raise its exceptions straight to the caller (no handler logging a traceback first)."""
    try:
        from ignite.engine import Events
    except ImportError:  # pragma: no cover
        return
    handlers = getattr(engine, "_event_handlers", None)
    if not isinstance(handlers, Mapping) or not hasattr(engine, "remove_event_handler"):
        return
    for h, _, _ in list(handlers.get(Events.EXCEPTION_RAISED, [])):
        engine.remove_event_handler(h, Events.EXCEPTION_RAISED)

    def _reraise(_engine: Any, e: BaseException) -> None:
        raise e

    engine.add_event_handler(Events.EXCEPTION_RAISED, _reraise)


# ---------------------------------------------------------------------------------------------- the run
class InferenceRun:
    """One inference run into ``output_dir``: up-front checks, staging, commit, manifest (see the module docstring).

    Bundle use (``inference.json``)::

        "inference_run": {"_target_": "monai_sadaan.io.InferenceRun", "output_dir": "@output_dir",
                          "dataset_dir": "@dataset_dir"},
        "datalist": "$@inference_run.inputs(monai_sadaan.data.image_folder.list_image_inputs, @dataset_dir)",
        ... SaveSADAAnOutputsd(..., "inference_run": "@inference_run") ...
        "run": ["$@inference_run.run(@evaluator)"]

    Python use::

        run = InferenceRun(out, datalist=[{"image": ..., "case": ..., "source": ...}, ...])
        run.check()                     # optional: start() checks again
        with run:                       # start(); commit() on success, abort() on an exception
            writer = SADAAnCaseWriter(out, inference_run=run)
            for ...: writer(case, labelmap, affine, presence)

    Args:
        output_dir: the folder that receives one sub-folder per case.
        dataset_dir: the input folder (refused as output folder), if any.
        datalist: the inputs, ``[{"image": path, "case": name, "source": path, "input_flags": str}, ...]``
            (``case``, ``source`` and ``input_flags`` optional); or set later by :meth:`inputs`.
        lock_timeout: seconds to wait for the output folder's lock before refusing (another run holds it).
        progress: show a progress bar (``True``), log one line per case (``False``), or a bar when stderr is a
            terminal and log lines otherwise (``None``, default).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        dataset_dir: str | os.PathLike | None = None,
        datalist: Sequence[Mapping[str, Any]] | None = None,
        lock_timeout: float = 5.0,
        progress: bool | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.dataset_dir = Path(dataset_dir) if dataset_dir is not None else None
        self.datalist: list[Mapping[str, Any]] | None = list(datalist) if datalist is not None else None
        self.lock_timeout = float(lock_timeout)
        self.run_id: str | None = None
        self.state = "new"  # new -> started -> complete | failed
        self.started_at: str | None = None
        self._staging: Path | None = None
        self._staged: dict[str, str | None] = {}
        self._writing: str | None = None
        self._stack: contextlib.ExitStack | None = None
        self._created: Path | None = None
        self._plan: list[dict[str, Any]] | None = None  # the plan as checked at the start
        self.progress = progress
        self.preflight_seconds: float | None = None
        self.case_seconds: dict[str, float] = {}
        self._clock: float | None = None  # perf_counter at the start, then at the end of the last case written
        self._started_clock: float | None = None
        self._finished_clock: float | None = None
        self._commit_seconds: float | None = None
        self._bar: Any = None

    # ------------------------------------------------------------------ planning and checks
    def inputs(
        self,
        list_inputs: Callable[..., Sequence[Mapping[str, Any]]] | Sequence[Mapping[str, Any]],
        *args: Any,
        **kwargs: Any,
    ) -> list[Mapping[str, Any]]:
        """List the inputs with ``list_inputs(*args, **kwargs)`` (or take a list), keep them as the datalist and
        :meth:`check` the output folder against them; a known failure becomes :class:`InferenceRunFailed`.

        Returns:
            the datalist.
        """
        clock = time.perf_counter()
        try:
            items = list(list_inputs(*args, **kwargs) if callable(list_inputs) else list_inputs)
            self.preflight_seconds = time.perf_counter() - clock
            self.datalist = items
            self.check()
        except Exception as e:
            message = describe_failure(e, output_dir=self.output_dir)
            if message is not None:
                raise InferenceRunFailed(f"{message}; nothing was written", e) from e
            raise
        return items

    def plan(self) -> list[dict[str, Any]]:
        """``[{"case", "source", "image", "input_flags"}]``: the case names as the writer makes them file-safe."""
        from monai_sadaan.data.image_folder import case_name_from_path, safe_case_name  # as the writer names cases

        out = []
        for i, item in enumerate(self.datalist or []):
            if not isinstance(item, Mapping) or "image" not in item:
                raise ValueError(f"expected datalist item {i} as a mapping with an 'image' path, got {item!r}")
            image = str(item["image"])
            case = safe_case_name(str(item.get("case") or case_name_from_path(image)))
            source = str(item.get("source") or image)
            out.append({"case": case, "source": os.path.abspath(source), "image": image,
                        "input_flags": parse_input_flags(item.get("input_flags"))})  # fmt: skip
        return out

    def source_for(self, case: str) -> str | None:
        """The source input of ``case`` in the datalist, or ``None``."""
        for item in self._plan if self._plan is not None else self.plan():
            if item["case"] == case:
                return item["source"]
        return None

    def problems(self) -> list[str]:
        """Every reason the run may not write into ``output_dir`` (empty list: it may)."""
        out = self.output_dir
        found: list[str] = []
        if os.path.lexists(out) and not out.is_dir():
            return [f"expected an output folder at {out}, found a file"]
        real_out = _real(out)
        if self.dataset_dir is not None and real_out == _real(self.dataset_dir):
            found.append(
                f"the output folder {out} is the input folder (--dataset_dir {self.dataset_dir}): expected results "
                "apart from the inputs, choose another --output_dir"
            )
        plan = self.plan()
        by_case: dict[str, list[str]] = {}
        for item in plan:
            by_case.setdefault(item["case"], []).append(item["source"])
        for case, sources in by_case.items():
            if len(sources) > 1:
                found.append(f"expected one input per case name, inputs {', '.join(sources)} all give case {case!r}")
            if case in _RESERVED_NAMES:
                found.append(
                    f"case name {case!r} (input {sources[0]}) is the name of a file this run writes in {out}; "
                    "rename the input"
                )
        sources = [item["source"] for item in plan]
        for item in plan:
            case_dir = out / item["case"]
            found += case_folder_problems(case_dir, item["case"], item["source"])
            real_dir = _real(case_dir)
            for src in sources:  # another case's input inside or at this case folder
                if src != item["source"] and (_within(real_dir, _real(src)) or _within(_real(src), real_dir)):
                    found.append(
                        f"case folder {case_dir} of case {item['case']!r} is, holds or lies inside input {src}: "
                        "expected outputs apart from the inputs, choose another --output_dir"
                    )
        manifest = out / RUN_MANIFEST
        if os.path.lexists(manifest) and self._read_manifest() is None:
            found.append(
                f"{manifest} exists and is not a run manifest of this tool (format {RUN_FORMAT!r}); {_HOW_TO_PROCEED}"
            )
        return list(dict.fromkeys(found))

    def check(self) -> None:
        """Raise :class:`OutputFolderError` naming every problem of :meth:`problems`, before anything is written."""
        found = self.problems()
        if found:
            raise OutputFolderError(
                f"refused to write into {self.output_dir} ({len(found)} problem{'s' if len(found) > 1 else ''}): "
                + "; ".join(f"{i + 1}) {p}" for i, p in enumerate(found))
            )

    def _read_manifest(self) -> dict[str, Any] | None:
        try:
            doc = json.loads((self.output_dir / RUN_MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) and doc.get("format") == RUN_FORMAT else None

    # ------------------------------------------------------------------ the run's life
    @property
    def started(self) -> bool:
        return self.state == "started"

    def start(self) -> None:
        """Create the output folder, take its lock, remove stale staging, check, and create the run's staging."""
        if self.state != "new":
            raise RuntimeError(f"expected a new InferenceRun, this one is {self.state}")
        out = self.output_dir
        missing = out
        while not os.path.lexists(missing.parent) and missing.parent != missing:
            missing = missing.parent
        self._created = missing if not os.path.lexists(out) else None
        self._stack = contextlib.ExitStack()
        try:
            out.mkdir(parents=True, exist_ok=True)
            if not self._stack.enter_context(folder_lock(out, blocking=False, timeout=self.lock_timeout)):
                others = [m for m in live_staging(out) if m.get("name") == "sadaan-run" and m.get("kind") == "partial"]
                who = (
                    ", ".join(f"pid {m.get('pid')} on {m.get('host')} since {m.get('started')}" for m in others)
                    or "another process"
                )
                raise OutputFolderError(
                    f"expected no other writer in the output folder {out}, found a SADAAn run in progress ({who}); "
                    "wait for it to finish, or choose another --output_dir"
                )
            for stale in remove_stale_staging(out):
                logger.info(f"removed {stale}, the staging folder of an interrupted run")
            self.check()
            self._plan = self.plan()
            self.started_at = _now()
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            self.run_id = f"{stamp}-{os.getpid()}-{secrets.token_hex(3)}"
            self._staging = make_staging_dir(out, "sadaan-run")
        except BaseException:
            self._release(remove_created=True)
            raise
        self.state = "started"
        self.case_seconds = {}
        self._started_clock = self._clock = time.perf_counter()
        self._open_progress()

    def stage_case(self, case: str, source: str | os.PathLike | None = None) -> Path:
        """A new, empty folder in the run's staging for ``case`` (called by the writer)."""
        if self.state != "started" or self._staging is None:
            raise RuntimeError(f"expected a started InferenceRun, this one is {self.state}")
        if case in self._staged:
            raise OutputFolderError(
                f"expected each case once in a run, case {case!r} came twice (inputs {self._staged[case]} and {source})"
            )
        found = case_folder_problems(self.output_dir / case, case, source)  # changed since the start? fail early
        if found:
            raise OutputFolderError("; ".join(found))
        folder = self._staging / case
        folder.mkdir()
        self._staged[case] = os.path.abspath(os.fspath(source)) if source is not None else None
        self._writing = case
        return folder

    def case_staged(self, case: str) -> None:
        """Mark ``case`` as completely written into the staging (called by the writer); time it and report it."""
        if self._writing == case:
            self._writing = None
        now = time.perf_counter()
        seconds = now - (self._clock if self._clock is not None else now)
        self._clock = now
        self.case_seconds[case] = seconds
        total = len(self._plan or [])
        done = len(self.case_seconds)
        if self._bar is not None:
            self._bar.set_postfix_str(f"{case} {seconds:.1f} s", refresh=False)
            self._bar.update(1)
        else:
            logger.info(f"case {done}/{total} {case}: written in {seconds:.2f} s")

    # ------------------------------------------------------------------ progress and timing
    def _open_progress(self) -> None:
        show = self.progress if self.progress is not None else _stderr_is_terminal()
        if not show:
            return
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover
            return
        self._bar = tqdm(total=len(self._plan or []), desc="SADAAn", unit="case", file=sys.stderr, leave=True)

    def _close_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def timing(self) -> dict[str, Any]:
        """The run's seconds: pre-flight, inference (start to the last case written), commit, and each case's."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        end = self._finished_clock if self._finished_clock is not None else self._clock
        inference = None if self._started_clock is None or end is None else end - self._started_clock
        return {
            "preflight_seconds": r(self.preflight_seconds),
            "inference_seconds": r(inference),
            "commit_seconds": r(self._commit_seconds),
            "cases": [{"case": c, "seconds": r(t)} for c, t in self.case_seconds.items()],
        }

    def summary(self) -> str:
        """One line: how many cases in how many seconds, and each case's seconds."""
        t = self.timing()
        cases = ", ".join(f"{c['case']} {c['seconds']:.2f} s" for c in t["cases"])
        pre = "" if t["preflight_seconds"] is None else f" (input checks {t['preflight_seconds']:.2f} s before)"
        n = len(t["cases"])
        inference = t["inference_seconds"] or 0.0
        return (
            f"SADAAn run {self.run_id}: {n} case{'s' if n != 1 else ''} in {inference:.2f} s{pre}"
            + (f": {cases}" if cases else "")
        )

    def commit(self) -> list[Path]:
        """Put every staged case in place (renames only), write the manifest, release the folder.

        Returns:
            the case folders written.

        Raises:
            OutputFolderError: a case folder changed since the start and may no longer be replaced (nothing is
                put in place then).
        """
        if self.state != "started" or self._staging is None:
            raise RuntimeError(f"expected a started InferenceRun, this one is {self.state}")
        out, staging = self.output_dir, self._staging
        self._finished_clock = self._clock
        self._close_progress()
        committing = time.perf_counter()
        try:
            found = []
            for case, source in self._staged.items():
                found += case_folder_problems(out / case, case, source)
            if found:
                raise OutputFolderError(f"refused to put the results in place in {out}: " + "; ".join(found))
            holder: Path | None = None
            placed: list[str] = []
            moved: list[str] = []
            try:
                for case in self._staged:
                    final = out / case
                    if os.path.lexists(final):
                        holder = holder or make_staging_dir(out, "sadaan-run", kind="old")
                        os.replace(final, holder / case)
                        moved.append(case)
                    os.replace(staging / case, final)
                    placed.append(case)
            except BaseException:
                for case in reversed(placed):
                    os.replace(out / case, staging / case)
                for case in moved:
                    os.replace(holder / case, out / case)  # type: ignore[operator]
                if holder is not None:
                    shutil.rmtree(holder, ignore_errors=True)
                raise
            if holder is not None:
                shutil.rmtree(holder, ignore_errors=True)
        except BaseException as e:
            self.abort(e)
            raise
        self.state = "complete"
        shutil.rmtree(staging, ignore_errors=True)
        self._commit_seconds = time.perf_counter() - committing
        self._write_manifest(None)
        self._release(remove_created=False)
        logger.info(self.summary())
        return [out / case for case in self._staged]

    def abort(self, error: BaseException | None = None) -> None:
        """Remove the run's staging; write the manifest (``failed``) if any case had been written; release."""
        if self.state != "started":
            return
        self.state = "failed"
        self._close_progress()
        if self._finished_clock is None:
            self._finished_clock = self._clock
        wrote = bool(self._staged)
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
        if wrote:
            self._write_manifest(error)
        self._release(remove_created=not wrote)

    def _release(self, remove_created: bool) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
        if remove_created and self._created is not None:
            folder = self.output_dir
            while True:  # the folders this run created, if they stayed empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
                if folder == self._created or folder.parent == folder:
                    break
                folder = folder.parent

    def _write_manifest(self, error: BaseException | None) -> None:
        results = []
        for d in sorted(p for p in self.output_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            marker = read_case_marker(d)
            if marker is not None:
                results.append(
                    {
                        "case": marker.get("case"),
                        "run_id": marker.get("run_id"),
                        "source": marker.get("source"),
                        "this_run": marker.get("run_id") == self.run_id,
                    }
                )
        err = None
        if error is not None:
            os_error = next((e for e in _chain(error) if isinstance(e, OSError) and e.errno), None)
            err = {
                "type": type(error).__name__,
                "errno": errno.errorcode.get(os_error.errno) if os_error is not None else None,
                "message": describe_failure(error, self._writing, self.output_dir)
                or " ".join(str(error).split())[:2000],
            }
        doc = {
            "format": RUN_FORMAT,
            "run_id": self.run_id,
            "status": "complete" if error is None else "failed",
            "started": self.started_at,
            "finished": _now(),
            "pid": os.getpid(),
            "host": platform.node(),
            "output_dir": os.path.abspath(self.output_dir),
            "dataset_dir": os.path.abspath(self.dataset_dir) if self.dataset_dir is not None else None,
            "versions": _versions(),
            "inputs": [{k: item[k] for k in ("case", "source", "input_flags")} for item in self.plan()],
            "error": err,
            "results": results,
            "timing": self.timing(),
        }
        path = self.output_dir / RUN_MANIFEST
        try:
            with atomic_open(path, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
        except OSError as e:  # a full disk: no manifest is better than an earlier run's one
            logger.warning(f"could not write the run manifest {path}: {e}")
            with contextlib.suppress(OSError):
                path.unlink()

    def __enter__(self) -> InferenceRun:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            self.commit()
        else:
            self.abort(exc)
        return False

    def run(self, evaluator: Any) -> None:
        """Start, run ``evaluator`` (``evaluator.run()``: an Ignite engine, or any object with ``run``), commit.

        Raises:
            InferenceRunFailed: a known cause (see :func:`describe_failure`), as one line; nothing of the run was
                put in place. Other exceptions propagate unchanged, after the same clean-up.
        """
        try:
            with self:
                _raise_directly(evaluator)
                evaluator.run()
        except Exception as e:
            message = describe_failure(e, self._writing, self.output_dir)
            if message is None:
                raise
            raise InferenceRunFailed(
                f"{message}; nothing of this run was put in place in {self.output_dir}, earlier results there are "
                "unchanged",
                e,
            ) from e
