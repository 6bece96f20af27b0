"""The MONAI Label app: :class:`SADAAnApp` (a ``MONAILabelApp``) with one segmentation model, :class:`SADAAnInferTask`.

Needs ``monailabel`` (0.8.5; ``make monailabel`` makes the environment). The server loads an app folder's
``main.py`` and looks there for a direct subclass of ``MONAILabelApp``; the folder that
``python -m monai_sadaan.monailabel app DEST`` writes holds a ``main.py`` that imports :class:`SADAAnApp`.

What the server then answers, in the form 3D Slicer's MONAI Label module reads:

* ``GET /info/``: ``labels`` ``{"left_kidney": 1, ..., "pancreas": 5}`` (the label values of the bundle, 0 is
  background), and one model of type ``segmentation`` named after the bundle folder with the same labels.
* ``POST /infer/<model>?image=<id>``: a multipart answer with the label map as real NIfTI (``.nii.gz``, uint8,
  the input's shape and affine) and ``params``: ``label_names`` (the same {name: value}, which the Slicer module
  uses to name the segments) and the presence report (calls, probabilities, confidence, volumes in mL, input
  flags): see :meth:`monai_sadaan.monailabel.inference.CaseResult.params`.

Settings (``monailabel start_server ... --conf KEY VALUE``):

* ``bundle``: the bundle folder to serve (default: the shipped ``sadaan_abdominal_ct_segmentation``); a copy you
  fine-tuned works the same way.
* ``device``: ``auto`` (default: the bundle's choice, the first GPU when there is one), ``cpu``, ``cuda:0``...

Nothing is downloaded: the weights are the bundle's ``models/model.pt``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from monai_sadaan.monailabel.inference import BundleCaseInference

__all__ = ["SADAAnApp", "SADAAnInferTask"]

logger = logging.getLogger(__name__)


class SADAAnInferTask(InferTask):
    """MONAI Label segmentation task that runs the SADAAn bundle on the requested image.

    Args:
        inference: the loaded bundle inference (:class:`BundleCaseInference`).
    """

    def __init__(self, inference: BundleCaseInference) -> None:
        self.inference = inference
        super().__init__(
            type=InferType.SEGMENTATION,
            labels=dict(inference.structures),
            dimension=3,
            description=(
                "SADAAn: left kidney, right kidney, liver, spleen and pancreas in abdominal CT, each with a "
                "present/absent call; absent structures come back as empty segments, the calls in the result params"
            ),
        )

    def info(self) -> dict[str, Any]:
        """MONAI Label's model entry, plus the bundle's name and version."""
        out = super().info()
        out["bundle"] = {k: v for k, v in self.inference.bundle.items() if k != "root"}
        return out

    def is_valid(self) -> bool:
        return True  # the bundle loaded (config, weights) when the task was made

    def __call__(self, request: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Run on ``request["image"]`` (a file or DICOM folder the datastore resolved); return the label file and
        the params.

        Raises:
            fastapi.HTTPException: 422 for an image that is not there or not a readable 3-D volume, 500 for any
                other failure; the detail says what went wrong (the Slicer module shows it in its error dialog).
        """
        from monai_sadaan.data.image_folder import InputImageError

        image = request.get("image")
        if not isinstance(image, (str, os.PathLike)) or not str(image):
            raise HTTPException(
                status_code=422, detail=f"SADAAn expected the path of an image file, got {type(image).__name__}"
            )
        path = None
        try:
            result = self.inference(image)
            fd, path = tempfile.mkstemp(prefix=f"sadaan_{result.case}_", suffix=".nii.gz")
            os.close(fd)
            result.write_nifti(path)  # the server deletes it once sent
        except Exception as e:
            if path is not None and os.path.exists(path):
                os.remove(path)
            if isinstance(e, InputImageError):
                raise HTTPException(status_code=422, detail=f"SADAAn could not use the image: {e}") from e
            logger.exception("SADAAn inference failed for %s", image)  # any other failure: 500 with its reason
            raise HTTPException(status_code=500, detail=f"SADAAn inference failed: {type(e).__name__}: {e}") from e
        params = result.params()
        logger.info(params["summary"])
        return path, params


class SADAAnApp(MONAILabelApp):
    """MONAI Label app serving the SADAAn bundle (see the module docstring for the settings).

    Args:
        app_dir: the app folder (the server writes its logs there).
        studies: the studies folder or server the datastore reads.
        conf: ``--conf`` settings (``bundle``, ``device``).
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        conf = dict(conf or {})
        self.inference = BundleCaseInference(bundle_root=conf.get("bundle") or None, device=conf.get("device"))
        bundle = self.inference.bundle
        logger.info(
            "SADAAn bundle %s %s from %s on %s",
            bundle["name"], bundle["version"], bundle["root"], self.inference.device,
        )  # fmt: skip
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="SADAAn",
            description="SADAAn abdominal CT segmentation with per-structure presence calls",
            version=bundle["version"],
            labels=dict(self.inference.structures),
        )

    def init_infers(self) -> dict[str, InferTask]:
        return {self.inference.bundle["name"]: SADAAnInferTask(self.inference)}
