"""The part of the 3D Slicer module that needs no Slicer: prepare the input, run the bundle, read the result back.

This module imports only the standard library at import time, so 3D Slicer's own Python can import it (the
Slicer module adds the repository root to ``sys.path``) without numpy-only or torch dependencies; inference itself
runs in a subprocess with a Python that has ``monai_sadaan`` installed (or in Slicer's Python if it has).

Typical use::

    case = prepare_input("/data/ct.nii.gz", work_dir / "input", case_name="ct")
    results = run_inference(bundle_dir, work_dir / "input", work_dir / "output", python="/opt/venv/bin/python")
    result = results["ct"]
    result.segmentation_path, result.label_map_path, result.presence
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "InferenceError",
    "CaseResult",
    "export_volume",
    "prepare_input",
    "build_inference_command",
    "run_inference",
    "read_results",
    "find_results",
    "presence_table",
]

PRESENCE_FORMAT = "sadaan-presence/1"  # the format tag written by monai_sadaan.io.presence
_PRESENCE_SUFFIX = "_presence.json"
_NIFTI_SUFFIXES = (".nii.gz", ".nii")


class InferenceError(RuntimeError):
    """The bundle's inference failed; the message ends with the last lines of its error output."""


@dataclass(frozen=True)
class CaseResult:
    """What the bundle wrote for one case (paths are absolute; optional files are ``None`` when absent).

    Attributes:
        case_name: the case's name (folder and file stem).
        case_dir: the case's output folder.
        segmentation_path: Slicer ``.seg.nrrd`` (``None`` if the bundle was told not to write it).
        label_map_path: NIfTI label map.
        colour_table_path: Slicer CSV colour table for the label map.
        presence_csv_path: presence report as CSV.
        probabilities_path: [X, Y, Z, S] probability maps, if written.
        presence: one dict per structure with ``structure, label, present, presence_probability, confidence,
            volume_ml``.
        source: the input file the case came from, when the report names it.
        warnings: the report's warnings (one line each: ``"code: message"``): about the input, and about a
            structure called present of which no voxel is painted.
    """

    case_name: str
    case_dir: Path
    segmentation_path: Path | None
    label_map_path: Path
    colour_table_path: Path | None
    presence_csv_path: Path | None
    probabilities_path: Path | None
    presence: list[dict[str, Any]] = field(default_factory=list)
    source: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def absent_structures(self) -> list[str]:
        return [r["structure"] for r in self.presence if r["present"] is False]

    @property
    def calls_withheld(self) -> bool:
        """Whether the presence calls were withheld (the input is not CT; the report's ``calls_withheld``)."""
        return any(r["present"] is None for r in self.presence)


def export_volume(
    array: Any, ijk_to_ras: Any, path: str | os.PathLike, array_order: str = "kji"
) -> Path:
    """Write a volume as NIfTI from an array and its IJK-to-RAS matrix (needs numpy and nibabel).

    Args:
        array: the voxels; ``array_order="kji"`` is what ``slicer.util.arrayFromVolume`` returns ([K, J, I]),
            ``"ijk"`` is nibabel / MONAI order ([I, J, K]).
        ijk_to_ras: 4x4 matrix from voxel index (i, j, k) to RAS millimetres (``volumeNode.GetIJKToRASMatrix``).
        path: ``.nii.gz`` output, written atomically.
        array_order: ``"kji"`` or ``"ijk"``.

    Returns:
        the written path.
    """
    import nibabel as nib
    import numpy as np

    from monai_glue import atomic_write_with

    if array_order not in ("kji", "ijk"):
        raise ValueError(f"expected array_order 'kji' (Slicer) or 'ijk' (nibabel/MONAI), got {array_order!r}")
    data = np.asarray(array)
    if data.ndim != 3:
        raise ValueError(f"expected a 3D scalar volume, got shape {tuple(data.shape)}")
    affine = np.asarray(ijk_to_ras, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError(f"expected a finite, invertible 4x4 IJK-to-RAS matrix, got shape {affine.shape}:\n{affine}")
    if array_order == "kji":
        data = np.transpose(data, (2, 1, 0))
    if not str(path).endswith(_NIFTI_SUFFIXES):
        raise ValueError(f"expected a NIfTI path (.nii.gz or .nii), got {path}")
    img = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    with atomic_write_with(path) as tmp:
        nib.save(img, tmp)
    return Path(path)


def prepare_input(
    volume: str | os.PathLike | Any,
    input_dir: str | os.PathLike,
    case_name: str,
    ijk_to_ras: Any | None = None,
    array_order: str = "kji",
) -> Path:
    """Put one case into an empty input folder for the bundle (its ``dataset_dir``).

    Args:
        volume: a NIfTI file (copied), or an array (written with :func:`export_volume`, then ``ijk_to_ras`` is
            required).
        input_dir: the folder the bundle reads; created if needed and must not hold other images (the bundle
            runs on every image in it).
        case_name: the name the outputs get (``<case_name>.nii.gz`` in ``input_dir``).
        ijk_to_ras: 4x4 IJK-to-RAS matrix when ``volume`` is an array.
        array_order: ``"kji"`` (Slicer) or ``"ijk"``, when ``volume`` is an array.

    Returns:
        path of the prepared input image.

    Raises:
        FileNotFoundError: ``volume`` is a path that does not exist.
        ValueError: a non-NIfTI file, a missing ``ijk_to_ras``, a bad case name, or ``input_dir`` holds other images.
    """
    _check_case_name(case_name)
    input_dir = Path(input_dir)
    input_dir.mkdir(parents=True, exist_ok=True)
    target = input_dir / f"{case_name}.nii.gz"
    others = [p.name for p in input_dir.iterdir() if p.name != target.name and not p.name.startswith(".")]
    if others:
        raise ValueError(f"expected an empty input folder (the bundle runs on every image in it), {input_dir} holds {others[:5]}")
    if isinstance(volume, (str, os.PathLike)):
        src = Path(volume)
        if not src.is_file():
            raise FileNotFoundError(f"expected an input image file, got a missing path: {src}")
        if not str(src).endswith(_NIFTI_SUFFIXES):
            raise ValueError(f"expected a NIfTI input (.nii.gz or .nii), got {src.name}; export it as NIfTI first")
        if str(src).endswith(".nii"):
            target = input_dir / f"{case_name}.nii"
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
        return target
    if ijk_to_ras is None:
        raise ValueError("expected ijk_to_ras (4x4) with an array volume, got None")
    return export_volume(volume, ijk_to_ras, target, array_order=array_order)


def _check_case_name(case_name: str) -> None:
    ok = isinstance(case_name, str) and case_name not in ("", ".", "..") and case_name[0] not in ".-"
    if not ok or any(not (c.isalnum() or c in "._+-") for c in case_name):
        raise ValueError(f"expected a case name of letters, digits and . _ + -, got {case_name!r}")


# How ``python -m monai.bundle run`` reads what the command passes (monai 1.6: monai/bundle/utils.py,
# config_item.py, config_parser.py, reference_resolver.py): a config string starting with ``$`` is evaluated as
# Python (``ConfigExpression``), one starting with ``@`` is a reference, one starting with ``%`` a macro that
# reads another config file; ``#`` in any string is rewritten to ``::`` and ``@::`` / ``%::`` to absolute ids;
# a mapping with ``_target_`` is instantiated. Before MONAI sees a value, ``fire`` parses it as a Python literal.
_CONFIG_PREFIXES = ("$", "@", "%")
_COMPONENT_KEYS = frozenset({"_target_", "_disabled_", "_requires_", "_desc_", "_mode_"})
_RUN_ARGUMENTS = frozenset(
    {"run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file"}
)  # arguments of monai.bundle.scripts.run itself, not config ids
_BUILDER_KEYS = frozenset({"bundle_root", "dataset_dir", "output_dir", "device"})  # set by the builder itself
_CONFIG_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:(?:#|::)[A-Za-z0-9_]+)*$")
_RELATIVE_ID = re.compile(r"[@%](?:#|::)")


def _config_values() -> Any:
    """``monai_glue/config_values.py`` (stdlib only), loaded without importing the package (and torch)."""
    module = sys.modules.get("monai_glue.config_values")
    if module is not None:
        return module
    name = "_monai_sadaan_slicer_config_values"
    module = sys.modules.get(name)
    if module is None:
        path = Path(__file__).resolve().parents[1] / "utils" / "config_values.py"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"expected the config value parsers at {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return module


def _check_config_string(text: str, what: str) -> str:
    """``text`` if MONAI's config parser keeps it as the plain string it is, else a ``ValueError`` naming ``what``."""
    if text.lstrip().startswith(_CONFIG_PREFIXES):
        raise ValueError(
            f"expected {what} to be a plain value, got {text!r}: a value starting with '$', '@' or '%' would be "
            "evaluated by MONAI's config parser as code, a reference or a macro, so it is refused"
        )
    if "#" in text or _RELATIVE_ID.search(text):
        raise ValueError(
            f"expected {what} without '#' (MONAI's config parser rewrites '#' to '::' in every string value and "
            f"would read another path or value), got {text!r}"
        )
    return text


def _cli_literal(value: Any, what: str) -> str:
    """``value`` as the Python literal ``fire`` turns back into exactly ``value``; refuses what MONAI would evaluate.

    Args:
        value: ``None``, a bool, an int, a finite float, a string (or path), or lists, tuples and string-keyed
            dicts of these.
        what: the override's name, for error messages.

    Returns:
        the literal's source text (strings are quoted, so ``"1"`` stays a string and ``"a,b"`` is not a tuple).

    Raises:
        ValueError: a string MONAI would treat as an expression, reference or macro, a string with ``#``, a
            mapping MONAI would instantiate (``_target_`` ...), a non-finite float or a value of another type.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite number for {what}, got {value!r}")
        return repr(value)
    if isinstance(value, (str, os.PathLike)):
        return repr(_check_config_string(os.fspath(value), what))
    if isinstance(value, (list, tuple)):
        items = [_cli_literal(v, f"{what}[{i}]") for i, v in enumerate(value)]
        return f"[{', '.join(items)}]"
    if isinstance(value, Mapping):
        parts = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"expected string keys in {what}, got {k!r}")
            if k in _COMPONENT_KEYS:
                raise ValueError(
                    f"expected {what} to be plain data, got a mapping with {k!r}: MONAI would import and call it"
                )
            parts.append(f"{_cli_literal(k, f'a key of {what}')}: {_cli_literal(v, f'{what}[{k!r}]')}")
        return "{" + ", ".join(parts) + "}"
    raise ValueError(
        f"expected {what} to be None, a bool, a number, a string or a list / dict of these, got {type(value).__name__}"
    )


def build_inference_command(
    bundle_dir: str | os.PathLike,
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    python: str = sys.executable,
    config_file: str = "configs/inference.json",
    meta_file: str | None = "configs/metadata.json",
    logging_file: str | None = "configs/logging.conf",
    device: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[str]:
    """The argument list that runs the bundle's inference on every image in ``input_dir``.

    ``python -m monai.bundle run --config_file <bundle>/configs/inference.json [--meta_file ...]
    [--logging_file ...] --bundle_root <bundle> --dataset_dir <input_dir> --output_dir <output_dir> ...``

    Nothing the caller passes is pasted into a config expression: the device is checked against
    ``cpu | mps | cuda | cuda:N`` (:func:`monai_glue.parse_device`) and the ``$torch.device(...)`` expression
    is built from the checked value; a path or override value that MONAI's config parser would not keep as the
    plain value it is (a string starting with ``$`` (code), ``@`` (reference) or ``%`` (macro), a string holding
    ``#``, a mapping with ``_target_``) is refused.

    Args:
        bundle_dir: the bundle's root folder (holds ``configs/``, ``models/``).
        input_dir: folder of input images (the config's ``dataset_dir``).
        output_dir: folder for the results (the config's ``output_dir``).
        python: interpreter with ``monai`` and ``monai_sadaan`` installed.
        config_file: inference config, relative to ``bundle_dir`` (or absolute, but inside ``bundle_dir``).
        meta_file, logging_file: relative to ``bundle_dir``; passed only when the file exists (``None``: never).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``: overrides the config's ``device`` id; ``None`` keeps
            the config's choice.
        overrides: further ``id -> value`` overrides (``{"sadaan_writer#absent": "omit"}``); ids are config ids
            (letters, digits, ``_``, ``#``), values are passed as Python literals, which ``monai.bundle``'s command
            line reads back as the same value (``False`` stays a bool, ``"1"`` stays a string).

    Returns:
        the argument list, for ``subprocess`` (no shell).

    Raises:
        FileNotFoundError: the bundle folder or its config file does not exist.
        ValueError: the config, meta or logging file lies outside the bundle folder (configs run only from the
            bundle the user names); a bad device; an override id that is not a config id or names an argument of
            the command itself; a path or value MONAI would evaluate or rewrite.
    """
    bundle = Path(bundle_dir).resolve()
    if not bundle.is_dir():
        raise FileNotFoundError(f"expected a bundle folder, got a missing path: {bundle}")
    config = (Path(config_file) if Path(config_file).is_absolute() else bundle / config_file).resolve()
    if bundle not in config.parents:  # configs run only from the bundle the user named
        raise ValueError(f"expected a config file inside the bundle folder {bundle}, got {config}")
    if not config.is_file():
        raise FileNotFoundError(f"expected the bundle's inference config at {config}, it does not exist")
    cmd = [str(python), "-m", "monai.bundle", "run", "--config_file", str(config)]
    for flag, rel in (("--meta_file", meta_file), ("--logging_file", logging_file)):
        if rel is not None:
            p = (Path(rel) if Path(rel).is_absolute() else bundle / rel).resolve()
            if bundle not in p.parents:
                raise ValueError(f"expected {flag[2:]} inside the bundle folder {bundle}, got {p}")
            if p.is_file():
                cmd += [flag, str(p)]
    for key, path in (("bundle_root", bundle), ("dataset_dir", Path(input_dir).resolve()),
                      ("output_dir", Path(output_dir).resolve())):  # fmt: skip
        # absolute paths start with a separator (or a drive), which fire keeps as the string it is
        cmd += [f"--{key}", _check_config_string(str(path), f"the {key} path")]
    if device is not None:
        checked = _config_values().parse_device(device, "device")  # only cpu, mps, cuda, cuda:N get through
        cmd += ["--device", f"$torch.device({checked!r})"]
    for key, value in (overrides or {}).items():
        if not isinstance(key, str) or not _CONFIG_ID.match(key):
            raise ValueError(f"expected an override id of letters, digits, '_' and '#' (a config id), got {key!r}")
        if key in _RUN_ARGUMENTS or key in _BUILDER_KEYS:
            raise ValueError(
                f"expected an override of a config id, got {key!r}, which the command sets itself "
                f"(pass bundle_dir, input_dir, output_dir, device, config_file, meta_file or logging_file instead)"
            )
        cmd += [f"--{key}", _cli_literal(value, f"override {key!r}")]
    return cmd


def run_inference(
    bundle_dir: str | os.PathLike,
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    python: str = sys.executable,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    poll: Callable[[], None] | None = None,
    log_path: str | os.PathLike | None = None,
    stderr_tail_lines: int = 40,
    env_remove: Sequence[str] = ("PYTHONHOME", "PYTHONPATH"),
    **command_kwargs: Any,
) -> dict[str, CaseResult]:
    """Run the bundle in a subprocess and read back what it wrote.

    Args:
        bundle_dir, input_dir, output_dir, python: see :func:`build_inference_command`.
        timeout: seconds before the subprocess is killed (``None``: no limit).
        env: extra environment variables for the subprocess (added to the current environment).
        env_remove: variables removed from the inherited environment before ``env`` is added. The default drops
            ``PYTHONHOME`` and ``PYTHONPATH``, which 3D Slicer's launcher sets to its own Python and which would
            break another interpreter; pass ``()`` when ``python`` is Slicer's own ``PythonSlicer``.
        poll: called about 5 times a second while the subprocess runs (Slicer passes
            ``slicer.app.processEvents`` to keep its window responsive).
        log_path: file that receives the subprocess's standard output and error (default:
            ``output_dir/sadaan_inference.log``).
        stderr_tail_lines: how many of the last error-output lines an :class:`InferenceError` quotes.
        command_kwargs: ``config_file``, ``meta_file``, ``logging_file``, ``device``, ``overrides``.

    Returns:
        case name -> :class:`CaseResult` for every case folder in ``output_dir``.

    Raises:
        InferenceError: the subprocess exited with a non-zero status, ran past ``timeout``, or wrote no result;
            the message quotes the end of its error output.
    """
    cmd = build_inference_command(bundle_dir, input_dir, output_dir, python=python, **command_kwargs)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = Path(log_path) if log_path is not None else out / "sadaan_inference.log"
    full_env = {k: v for k, v in os.environ.items() if k not in set(env_remove)}
    full_env.update(env or {})
    with tempfile.TemporaryFile(mode="w+b") as err, open(log, "wb") as out_log:
        proc = subprocess.Popen(cmd, stdout=out_log, stderr=err, env=full_env, cwd=str(Path(bundle_dir).resolve()))
        start = time.monotonic()
        timed_out = False
        while proc.poll() is None:
            if poll is not None:
                poll()
            if timeout is not None and time.monotonic() - start > timeout:
                proc.kill()
                proc.wait()
                timed_out = True
                break
            time.sleep(0.2)
        err.seek(0)
        err_text = err.read().decode("utf-8", errors="replace")
        out_log.write(b"\n--- stderr ---\n" + err_text.encode("utf-8"))
    tail = "\n".join(deque(err_text.splitlines(), maxlen=stderr_tail_lines))
    if timed_out:
        raise InferenceError(f"inference ran past the {timeout} s timeout and was stopped; full log: {log}\n{tail}")
    if proc.returncode != 0:
        raise InferenceError(
            f"inference failed with exit status {proc.returncode}: {' '.join(cmd[:4])} ...; full log: {log}\n"
            f"last lines of its error output:\n{tail}"
        )
    results = find_results(out)
    if not results:
        raise InferenceError(f"inference finished but wrote no case results into {out}; full log: {log}\n{tail}")
    return results


def _file(case_dir: Path, files: Mapping[str, str], key: str, required: bool) -> Path | None:
    name = files.get(key)
    if name is None:
        if required:
            raise ValueError(f"expected the presence report in {case_dir} to list a {key!r} file, it lists {sorted(files)}")
        return None
    p = case_dir / name
    if Path(name).name != name:
        raise ValueError(f"expected a plain file name for {key!r} in {case_dir}, got {name!r}")
    if not p.is_file():
        raise FileNotFoundError(f"expected the {key} file {p} listed in the presence report, it does not exist")
    return p


def read_results(case_output_dir: str | os.PathLike) -> CaseResult:
    """Read one case folder written by ``monai_sadaan.io.SADAAnCaseWriter``.

    Args:
        case_output_dir: ``output_dir/<case>/``, holding exactly one ``<case>_presence.json``.

    Returns:
        the :class:`CaseResult` (paths checked to exist).

    Raises:
        FileNotFoundError: the folder, its presence report, or a file the report lists is missing.
        ValueError: the report is not a SADAAn presence report or lacks a column.
    """
    case_dir = Path(case_output_dir)
    if not case_dir.is_dir():
        raise FileNotFoundError(f"expected a case output folder, got a missing path: {case_dir}")
    reports = sorted(case_dir.glob(f"*{_PRESENCE_SUFFIX}"))
    if len(reports) != 1:
        raise FileNotFoundError(
            f"expected one '*{_PRESENCE_SUFFIX}' presence report in {case_dir}, found {[p.name for p in reports]}"
        )
    try:
        doc = json.loads(reports[0].read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"expected a JSON presence report, {reports[0]} is not valid JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != PRESENCE_FORMAT:
        raise ValueError(f"expected a SADAAn presence report (format {PRESENCE_FORMAT!r}) in {reports[0]}")
    columns = ("structure", "label", "present", "presence_probability", "confidence", "volume_ml")
    rows = []
    for r in doc.get("structures", []):
        missing = [c for c in columns if c not in r]
        if missing:
            raise ValueError(f"expected presence rows with {list(columns)} in {reports[0]}, a row lacks {missing}")
        rows.append({c: r[c] for c in columns})
    files = doc.get("files") or {}
    case_name = doc.get("case") or reports[0].name[: -len(_PRESENCE_SUFFIX)]
    return CaseResult(
        case_name=case_name,
        case_dir=case_dir.resolve(),
        segmentation_path=_file(case_dir, files, "segmentation", required=False),
        label_map_path=_file(case_dir, files, "label_map", required=True),  # type: ignore[arg-type]
        colour_table_path=_file(case_dir, files, "colour_table", required=False),
        presence_csv_path=_file(case_dir, files, "presence_csv", required=False),
        probabilities_path=_file(case_dir, files, "probabilities", required=False),
        presence=rows,
        source=doc.get("source") if isinstance(doc.get("source"), str) else None,
        warnings=[str(w) for w in doc["warnings"]] if isinstance(doc.get("warnings"), list) else [],
    )


def find_results(output_dir: str | os.PathLike) -> dict[str, CaseResult]:
    """case name -> :class:`CaseResult` for every case folder (one with a presence report) in ``output_dir``."""
    out = Path(output_dir)
    found = {}
    for d in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any(d.glob(f"*{_PRESENCE_SUFFIX}")):
            r = read_results(d)
            found[r.case_name] = r
    return found


#: how a call reads (``monai_sadaan.io.presence.CALL_TEXT``, repeated: this module imports the standard library only)
_CALL_TEXT = {True: "present", False: "ABSENT", None: "withheld: not CT"}


def presence_table(result: CaseResult | Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Rows for a display table (header first): Structure, Call, P(present), Confidence, Volume (ml).

    Absent structures read ``ABSENT``, present ones ``present``, so the absent call stands out; on an image that is
    not CT every call reads ``withheld: not CT``.
    """
    rows = result.presence if isinstance(result, CaseResult) else list(result)
    table = [["Structure", "Call", "P(present)", "Confidence", "Volume (ml)"]]
    for r in rows:
        table.append(
            [
                str(r["structure"]),
                _CALL_TEXT[r["present"]],
                f"{float(r['presence_probability']):.3f}",
                f"{float(r['confidence']):.3f}",
                f"{float(r['volume_ml']):.1f}",
            ]
        )
    return table
