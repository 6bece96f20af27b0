"""SADAAn's bundle inference for one image, in process, without MONAI Label: what the MONAI Label app calls.

:class:`BundleCaseInference` reads the bundle's ``configs/inference.json`` once and keeps what it builds: the
network with the shipped weights (loaded by the config's own checkpoint handler), the preprocessing, the inferer
and the postprocessing without its file writer (``SaveSADAAnOutputsd``). For each image it then runs the bundle's
own steps: the input checks of :func:`~monai_sadaan.data.image_folder.list_image_inputs` (with the plausibility
flags), the preprocessing, the network, and the postprocessing that puts the label map back on the input's grid.
The result (:class:`CaseResult`) holds the integer label map with the input's affine and the presence report rows
(calls, probabilities, confidence and volumes counted from the label map), and turns into the JSON-ready ``params``
that travel with MONAI Label's response (:meth:`CaseResult.params`).

Nothing here imports ``monailabel``: the module works in the project's own environment too, where the tests compare
it with a plain bundle run.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "BUNDLE_NAME",
    "WRITER_TRANSFORMS",
    "BundleCaseInference",
    "CaseResult",
    "default_bundle_root",
]

#: the bundle this app serves by default
BUNDLE_NAME = "sadaan_abdominal_ct_segmentation"

#: postprocessing transforms that write files; they are left out in process (the label map and the presence rows
#: are returned to the caller instead), as MONAI Label's own bundle task leaves out ``SaveImaged``
WRITER_TRANSFORMS = frozenset({"SaveSADAAnOutputsd", "SaveImaged", "SaveImage"})


def default_bundle_root() -> Path:
    """The shipped SADAAn bundle's folder (the checkout's ``bundles/`` or the installed wheel's copy)."""
    from monai_glue.bundles import bundle_root

    return bundle_root(BUNDLE_NAME)


def _target_name(entry: Any) -> str:
    """Last dotted part of a config entry's ``_target_`` (``""`` for anything else)."""
    if isinstance(entry, Mapping) and isinstance(entry.get("_target_"), str):
        return entry["_target_"].rsplit(".", 1)[-1]
    return ""


def _to_device(value: str | torch.device | None) -> torch.device | None:
    """``"auto"`` / ``None`` -> ``None`` (the bundle's own choice); anything else -> ``torch.device``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        return torch.device(value)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"expected a torch device such as 'cpu', 'cuda' or 'cuda:1' (or 'auto'), got {value!r}") from e


@dataclass
class CaseResult:
    """One image's SADAAn result.

    Attributes:
        case: file-safe case name (from the image's file name, as the bundle names its output folders).
        source: the image file (or DICOM folder) that was read.
        label_map: integer label map [X, Y, Z] on the input's own grid (0 background, each structure its value).
        affine: 4x4 voxel-to-RAS affine of the input, as it was read.
        rows: presence report rows (:class:`~monai_sadaan.io.presence.StructurePresence`), one per structure.
        structures: structure name -> label value, from the bundle config.
        input_flags: ``[{"code", "message"}]`` findings of the input checks (empty for CT-like input).
        bundle: ``{"name", "version", "root"}`` of the bundle that made it.
        seconds: time of each step (``checks``, ``preprocessing``, ``network``, ``postprocessing``, ``total``).
    """

    case: str
    source: str
    label_map: np.ndarray
    affine: np.ndarray
    rows: list[Any]
    structures: dict[str, int]
    input_flags: list[dict[str, str]]
    bundle: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)

    def write_nifti(self, path: str | os.PathLike) -> str:
        """Write the label map as NIfTI (the bundle's writer: uint8, qform and sform = the input's affine)."""
        from monai_sadaan.io import write_label_map_nifti

        return write_label_map_nifti(self.label_map, self.affine, path)

    def params(self) -> dict[str, Any]:
        """JSON-ready result parameters (what MONAI Label sends beside the label file).

        ``label_names`` ({name: value}) is the key 3D Slicer's MONAI Label module reads to name the segments;
        the rest is the presence report of the bundle's ``<case>_presence.json`` (its ``format``, ``case``,
        ``source``, ``input_flags``, ``warnings``, ``calls_withheld``, ``present_without_voxels``, ``columns`` and
        ``structures`` rows), plus the ``absent`` names, the bundle and the step times.
        """
        from monai_sadaan.io.presence import PRESENCE_COLUMNS, PRESENCE_FORMAT, report_findings

        rows = [r.as_dict() for r in self.rows]
        for r in rows:  # plain Python numbers, to the decimals of the bundle's presence CSV
            r["label"] = int(r["label"])
            r["present"] = None if r["present"] is None else bool(r["present"])
            for k in ("presence_probability", "confidence"):
                r[k] = round(float(r[k]), 6)
            r["volume_ml"] = round(float(r["volume_ml"]), 4)
        return {
            "label_names": {name: int(value) for name, value in self.structures.items()},
            "format": PRESENCE_FORMAT,
            "case": self.case,
            "source": self.source,
            "input_flags": [dict(f) for f in self.input_flags],
            **report_findings(self.rows, self.input_flags),
            "columns": list(PRESENCE_COLUMNS),
            "structures": rows,
            "absent": [r["structure"] for r in rows if r["present"] is False],
            "summary": self.summary(),
            "bundle": dict(self.bundle),
            "latencies": {k: round(v, 3) for k, v in self.seconds.items()},
        }


    def summary(self) -> str:
        """One line for a reader: the absent structures with their probability and confidence, then the present
        ones with their volume, or "no voxel painted" for one called present without a voxel in the label map (3D
        Slicer's MONAI Label module prints the params in its Python console)."""
        from monai_sadaan.io.presence import present_without_voxels

        flags = [f["code"] for f in self.input_flags]
        if any(r.present is None for r in self.rows):
            return f"SADAAn {self.case}: no presence calls, the input is not CT; input flags: " + ", ".join(flags)
        absent = [r for r in self.rows if not r.present]
        present = [r for r in self.rows if r.present]
        unlocalised = set(present_without_voxels(self.rows))
        absent_text = ", ".join(
            f"{r.structure} (P(present) {r.presence_probability:.4f}, confidence {r.confidence:.2f})" for r in absent
        )
        present_text = ", ".join(
            f"{r.structure} (P(present) {r.presence_probability:.4f}, no voxel painted: where it lies is not known)"
            if r.structure in unlocalised
            else f"{r.structure} {r.volume_ml:.1f} mL"
            for r in present
        )
        parts = [f"absent: {absent_text or 'none'}", f"present: {present_text or 'none'}"]
        if flags:
            parts.append("input flags: " + ", ".join(flags))
        return f"SADAAn {self.case}: " + "; ".join(parts)


class BundleCaseInference:
    """The SADAAn bundle's inference, loaded once, run on one image at a time (thread-safe: calls are serialised).

    Args:
        bundle_root: the bundle folder (default: the shipped bundle, :func:`default_bundle_root`).
        device: ``"auto"`` / ``None`` (the bundle's choice: the first GPU when there is one), or a torch device.
        config_file: inference config, relative to ``bundle_root`` unless absolute.
        overrides: further config values (``{"presence_threshold": 0.5}``...), set before anything is built.

    Raises:
        FileNotFoundError: no config, metadata or weights where the bundle says they are.
        ValueError: a config whose postprocessing does not end in the label map and presence the writer takes.
    """

    def __init__(
        self,
        bundle_root: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        config_file: str = "configs/inference.json",
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        from monai.bundle import ConfigParser

        self.bundle_root = Path(bundle_root).resolve() if bundle_root is not None else default_bundle_root()
        config_path = Path(config_file) if Path(config_file).is_absolute() else self.bundle_root / config_file
        meta_path = self.bundle_root / "configs" / "metadata.json"
        for what, p in (("inference config", config_path), ("metadata", meta_path)):
            if not p.is_file():
                raise FileNotFoundError(f"expected the bundle's {what} at {p}, found no file")
        parser = ConfigParser()
        parser.read_config(str(config_path))
        parser.read_meta(str(meta_path))
        parser["bundle_root"] = str(self.bundle_root)
        chosen = _to_device(device)
        if chosen is not None:
            parser["device"] = f"$torch.device({str(chosen)!r})"
        for key, value in (overrides or {}).items():
            parser[key] = value
        self.label_key, self.presence_key = self._drop_writers(parser, config_path)

        self.ckpt_path = Path(parser.get_parsed_content("ckpt_path"))
        if not self.ckpt_path.is_file():
            raise FileNotFoundError(f"expected the bundle's weights at {self.ckpt_path}, found no file")
        self.device = torch.device(parser.get_parsed_content("device"))
        self.structures = {str(k): int(v) for k, v in parser.get_parsed_content("structures").items()}
        self.bundle = {
            "name": self.bundle_root.name,
            "version": str(parser.get_parsed_content("_meta_#version", default="")),
            "root": str(self.bundle_root),
        }
        self.network = parser.get_parsed_content("network")
        self._load_weights(parser, config_path)
        self.network.eval()
        self.preprocessing = parser.get_parsed_content("preprocessing")
        self.inferer = parser.get_parsed_content("inferer")
        self.postprocessing = parser.get_parsed_content("postprocessing")
        self._lock = threading.Lock()

    @staticmethod
    def _drop_writers(parser: Any, config_path: Path) -> tuple[str, str]:
        """Remove the file writers from ``postprocessing``; return the (label map, presence) keys they took."""
        post = parser["postprocessing"]
        transforms = post.get("transforms") if isinstance(post, Mapping) else None
        if not isinstance(transforms, list):
            raise ValueError(f"expected 'postprocessing' in {config_path} to be a Compose with a 'transforms' list")
        writers = [t for t in transforms if _target_name(t) in WRITER_TRANSFORMS]
        label_key, presence_key = "label_map", "presence"
        for w in writers:
            if _target_name(w) == "SaveSADAAnOutputsd":
                label_key = str(w.get("keys", label_key))
                presence_key = str(w.get("presence_key", presence_key))
        parser["postprocessing"]["transforms"] = [t for t in transforms if _target_name(t) not in WRITER_TRANSFORMS]
        return label_key, presence_key

    def _load_weights(self, parser: Any, config_path: Path) -> None:
        """Load the weights with the config's own checkpoint handler (the one with a ``load_path``)."""
        handlers = parser["handlers"] if isinstance(parser.get("handlers"), list) else []
        loaders = [i for i, h in enumerate(handlers) if isinstance(h, Mapping) and "load_path" in h]
        if not loaders:
            raise ValueError(
                f"expected a checkpoint handler (an entry with 'load_path') in 'handlers' of {config_path}, found none"
            )
        for i in loaders:
            loader = parser.get_parsed_content(f"handlers#{i}")
            loader(None)  # SafeCheckpointLoader loads on a call; it needs no engine

    def input_item(self, image: str | os.PathLike) -> dict[str, str]:
        """The datalist item the bundle would make for ``image``: ``{"image", "case", "source", "input_flags"}``.

        The image is checked as the bundle checks its input folder (:func:`list_image_inputs`, header then voxel
        data, which also gives the plausibility flags); a link to it in a private folder stands for that folder.

        Raises:
            monai_sadaan.data.image_folder.InputImageError: a missing, unreadable or corrupt image.
        """
        from monai_sadaan.data.image_folder import InputImageError, list_image_inputs

        src = Path(image).resolve()
        if not src.exists():
            raise InputImageError(f"expected an image file or DICOM folder, found nothing at {src}")
        with tempfile.TemporaryDirectory(prefix="sadaan-monailabel-") as tmp:
            os.symlink(src, Path(tmp) / src.name, target_is_directory=src.is_dir())
            items = list_image_inputs(tmp)
        if len(items) != 1:
            raise InputImageError(f"expected one image at {src}, the input checks found {len(items)}")
        item = dict(items[0])
        item["image"] = item["source"] = str(src)
        return item

    def __call__(self, image: str | os.PathLike) -> CaseResult:
        """Run the bundle's inference on one image file (NIfTI, NRRD, MetaImage) or DICOM series folder."""
        from monai.data import decollate_batch, list_data_collate

        from monai_sadaan.io.presence import presence_rows, withhold_presence_calls

        with self._lock:
            t0 = time.perf_counter()
            item = self.input_item(image)
            t1 = time.perf_counter()
            data = self.preprocessing(dict(item))
            batch = list_data_collate([data])
            t2 = time.perf_counter()
            inputs = batch["image"].to(self.device)
            with torch.no_grad():
                pred = self.inferer(inputs, self.network)
            t3 = time.perf_counter()
            # as MONAI's evaluator hands each sample to the postprocessing: the batch's items and the output's
            sample = {**decollate_batch(batch, detach=True)[0]}
            sample.update(decollate_batch({"image": inputs, "pred": pred}, detach=True)[0])
            out = self.postprocessing(sample)
            missing = [k for k in (self.label_key, self.presence_key) if k not in out]
            if missing:
                raise ValueError(
                    f"expected the bundle's postprocessing (without its writer) to give {missing}, got keys "
                    f"{sorted(map(str, out))}"
                )
            label_map = out[self.label_key]
            affine = np.asarray(label_map.affine, dtype=np.float64)
            lm = label_map.detach().cpu().numpy()
            lm = lm[0] if lm.ndim == 4 else lm
            rows = presence_rows(lm, affine, out[self.presence_key], self.structures)
            flags = json.loads(item.get("input_flags") or "[]")
            lm, rows = withhold_presence_calls(lm, rows, flags)  # not CT: no call, nothing painted
            t4 = time.perf_counter()
        return CaseResult(
            case=item["case"],
            source=item["source"],
            label_map=lm,
            affine=affine,
            rows=rows,
            structures=dict(self.structures),
            input_flags=flags,
            bundle=dict(self.bundle),
            seconds={
                "checks": t1 - t0,
                "preprocessing": t2 - t1,
                "network": t3 - t2,
                "postprocessing": t4 - t3,
                "total": t4 - t0,
            },
        )
