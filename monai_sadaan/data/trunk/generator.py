"""``generate_trunk_phantom``: one synthetic CT of a whole adult trunk (neck to pelvic floor), cut to a clinical
field of view, with its label map and presence truth.

The case is a pure function of ``(scenario, seed)`` and the arguments: the patient, the field of view, the grid and
the image are drawn from separate random streams, so that ``intensity_mode="random"`` (domain randomisation) gives
the same anatomy and the same label map as the CT rendering of the seed, and a fixed ``orientation`` or ``shape``
does not change the patient.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..geometry import parse_orientation
from ..phantoms import (
    DEFAULT_STRUCTURES,
    Phantom,
    _apply_fov_cut,
    _case_fields,
    _case_rngs,
    _draw_orientation,
    _grid_axes,
    _ras_grid,
    _triple,
    check_structures,
)
from ..scenarios import TRUNK_SCENARIOS, FieldOfViewCut, check_scenarios, plan_fov_cut, plan_scenario
from .anatomy import LABELLED_ORGANS, Patient, render_patient, sample_patient
from .canvas import Canvas
from .physics import INTENSITY_MODES, PHASES, form_image, sample_imaging

__all__ = [
    "FIELDS_OF_VIEW",
    "DEFAULT_FOV_WEIGHTS",
    "TRUNK_GENERATOR_VERSION",
    "TrunkPhantom",
    "generate_trunk_phantom",
    "check_fov_weights",
    "crop_fov_box",
]

TRUNK_GENERATOR_VERSION = 6
"""Bumped whenever a change alters the cases drawn for a seed (datasets stamped with another version are remade)."""

FIELDS_OF_VIEW: tuple[str, ...] = (
    "chest",
    "chest_abdomen",
    "abdomen",
    "abdomen_pelvis",
    "pelvis",
    "slab",
    "whole_trunk",
    "limited_abdomen",
)
"""Clinical fields of view: chest only (lung apices to just above the diaphragm domes), chest + upper abdomen (to
L2-L4), abdomen (domes to the iliac crests), abdomen + pelvis (domes to the pelvic floor), pelvis only (below the
lowest abdominal organ), a thin slab (2-6 cm anywhere), the whole trunk (neck to pelvic floor), and a limited
abdominal scan (6-15 cm within the band of the five organs, as renal, adrenal and pancreas protocols or a short
upper-abdominal acquisition cover). ``limited_abdomen`` is not in :data:`DEFAULT_FOV_WEIGHTS` (so the default draw
of every seed is the same as before it existed): name it in ``fov_weights`` to draw it."""

DEFAULT_FOV_WEIGHTS: dict[str, float] = {
    "chest": 0.1,
    "chest_abdomen": 0.15,
    "abdomen": 0.25,
    "abdomen_pelvis": 0.2,
    "pelvis": 0.1,
    "slab": 0.1,
    "whole_trunk": 0.1,
}
"""Relative frequency of each field of view with ``field_of_view="random"``."""

_PHASE_WEIGHTS = (0.4, 0.2, 0.4)
"""Share of non-contrast, arterial and portal-venous cases with ``phase="random"``. Non-contrast is common in practice
(stone protocols, follow-ups, the low-dose CT of PET-CT), and it is where organs differ least from their
surroundings: the networks trained on version 4-5 data called presence worst on non-contrast phantoms."""
_MAX_FOV_MM = 500.0
_FIVE = ("left_kidney", "right_kidney", "liver", "spleen", "pancreas")


@dataclass
class TrunkPhantom(Phantom):
    """A :class:`~monai_sadaan.data.phantoms.Phantom` from the trunk generator, with what was drawn for it.

    Attributes:
        field_of_view: the field of view's name (:data:`FIELDS_OF_VIEW`).
        phase: the contrast phase (:data:`~monai_sadaan.data.trunk.physics.PHASES`).
        intensity_mode: ``"ct"`` or ``"random"``.
        fov_box: (3, 2) world extent (mm, RAS, patient frame) of the field of view.
        imaging: scanner and injection summary (kernel, slice thickness, noise...).
        patient_info: body habitus summary (fat, sex-like pelvis, arms, levels in view).
    """

    field_of_view: str = "abdomen"
    phase: str = "portal_venous"
    intensity_mode: str = "ct"
    fov_box: np.ndarray | None = None
    imaging: dict = field(default_factory=dict)
    patient_info: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        """JSON-ready description: the base phantom's plus field of view, phase, intensity mode, scanner, patient."""
        out = super().metadata()
        out.update(
            generator="trunk",
            generator_version=TRUNK_GENERATOR_VERSION,
            field_of_view=self.field_of_view,
            phase=self.phase,
            intensity_mode=self.intensity_mode,
            fov_z_mm=[round(float(v), 2) for v in self.fov_box[2]] if self.fov_box is not None else None,
            imaging=dict(self.imaging),
            patient=dict(self.patient_info),
        )
        return out


def check_fov_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """Validate field-of-view weights (``None``: :data:`DEFAULT_FOV_WEIGHTS`).

    Raises:
        ValueError: not a non-empty mapping, an unknown name, a negative or non-finite weight, or a zero sum.
    """
    if weights is None:
        return dict(DEFAULT_FOV_WEIGHTS)
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(f"expected field-of-view weights as a non-empty mapping of name -> weight, got {weights!r}")
    out = {}
    for name, value in weights.items():
        if name not in FIELDS_OF_VIEW:
            raise ValueError(f"expected field-of-view names from {', '.join(FIELDS_OF_VIEW)}, got {name!r}")
        number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a finite non-negative weight for field of view {name!r}, got {value!r}")
        out[str(name)] = float(value)
    if sum(out.values()) <= 0:
        raise ValueError(f"expected field-of-view weights with a positive sum, got {out}")
    return out


def crop_fov_box(fov_box: np.ndarray, crop: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """The (3, 2) world extent (mm) of ``fov_box`` intersected with ``crop``.

    Raises:
        ValueError: ``crop`` is not (3, 2) finite ``[low, high]`` rows with ``low < high``, or misses the box.
    """
    try:
        c = np.asarray(crop, dtype=np.float64)
    except (TypeError, ValueError):
        c = np.zeros(0)
    if c.shape != (3, 2) or not np.isfinite(c).all() or not (c[:, 0] < c[:, 1]).all():
        raise ValueError(f"expected crop as (3, 2) finite [low, high] rows in mm with low < high, got {crop!r}")
    out = np.stack([np.maximum(fov_box[:, 0], c[:, 0]), np.minimum(fov_box[:, 1], c[:, 1])], axis=1)
    if not (out[:, 0] < out[:, 1]).all():
        raise ValueError(
            f"expected a crop that overlaps the field of view {np.round(fov_box, 1).tolist()} (mm), got "
            f"{np.round(c, 1).tolist()}"
        )
    return out


def _fov_z(name: str, p: Patient, rng: np.random.Generator) -> tuple[float, float]:
    """The field of view's inferior and superior edges (mm)."""
    u = rng.uniform
    L = p.level_z
    tops = [p.organ_extent(n)[2, 1] for n in _FIVE]
    bottoms = [p.organ_extent(n)[2, 0] for n in _FIVE]
    dome = max(p.domes["right"][2], p.domes["left"][2])
    organ_top, organ_bottom = max(max(tops), dome), min(bottoms)
    apex_top = p.z_apex + u(10.0, 40.0)
    floor = p.z_floor - u(0.0, 25.0)
    if name == "chest":
        return organ_top + u(5.0, 30.0), apex_top
    if name == "chest_abdomen":
        return float(np.interp(u(0, 1), [0, 0.5, 1], [L["L4"], L["L3"], L["L2"]])), apex_top
    if name == "abdomen":
        crest = L["L4"] + u(-25.0, 15.0)
        return min(crest, organ_bottom - u(5.0, 20.0)), dome + u(0.0, 40.0)
    if name == "abdomen_pelvis":
        return floor, dome + u(0.0, 40.0)
    if name == "pelvis":
        top = min(L["L4"] + u(-10.0, 20.0), organ_bottom - u(5.0, 25.0))
        return floor, top
    if name == "slab":
        thick = u(20.0, 60.0)
        centre = u(p.z_floor + thick / 2, p.z_apex - thick / 2)
        return centre - thick / 2, centre + thick / 2
    if name == "whole_trunk":
        return floor, p.z_top + u(-20.0, 10.0)
    if name == "limited_abdomen":
        thick = u(60.0, 150.0)
        band_lo, band_hi = organ_bottom - 10.0, organ_top + 10.0
        if band_hi - band_lo <= thick:
            centre = 0.5 * (band_lo + band_hi) + u(-10.0, 10.0)
        else:
            centre = u(band_lo + thick / 2, band_hi - thick / 2)
        return centre - thick / 2, centre + thick / 2
    raise ValueError(f"expected a field of view from {', '.join(FIELDS_OF_VIEW)} or 'random', got {name!r}")


def generate_trunk_phantom(
    scenario: str = "normal",
    seed: int = 0,
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    field_of_view: str = "random",
    fov_weights: Mapping[str, float] | None = None,
    phase: str = "random",
    intensity_mode: str = "ct",
    shape: int | Sequence[int] | None = None,
    spacing: float | Sequence[float] | None = None,
    orientation: str | None = None,
    min_voxels: int = 20,
    crop: np.ndarray | Sequence[Sequence[float]] | None = None,
) -> TrunkPhantom:
    """Draw one synthetic CT of a trunk, cut to a field of view.

    Args:
        scenario: one of :data:`~monai_sadaan.data.scenarios.TRUNK_SCENARIOS` (the abdominal scenarios plus
            ``"pancreatectomy"``).
        seed: non-negative integer.
        structures: labelled structures, name -> label value (names from
            :data:`~monai_sadaan.data.phantoms.KNOWN_STRUCTURES`).
        field_of_view: a name from :data:`FIELDS_OF_VIEW`, or ``"random"`` (drawn with ``fov_weights``; with
            ``"partial_fov"`` only views that hold abdominal organs are drawn).
        fov_weights: relative frequency per field of view for ``"random"`` (default :data:`DEFAULT_FOV_WEIGHTS`).
        phase: ``"non_contrast"``, ``"arterial"``, ``"portal_venous"`` or ``"random"`` (40 / 20 / 40%).
        intensity_mode: ``"ct"`` (textbook HU) or ``"random"`` (a random mean per tissue class: same anatomy and
            labels, other contrasts).
        shape: voxels per voxel axis (one int or three); default 64-128 per axis (fewer slices for a thin slab).
        spacing: voxel size (mm) per voxel axis; default: the field of view divided by ``shape``. With both, the
            grid is centred on the field of view.
        orientation: nibabel orientation code of the voxel axes; default random (``RAS`` / ``LPS`` / ``LAS`` half
            of the time).
        min_voxels: smallest voxel count of a structure that counts as present.
        crop: optional (3, 2) world extent (mm, RAS, the frame of ``fov_box``) to render instead of the whole field
            of view: the grid covers the field of view intersected with it, for the same patient, field of view and
            imaging. With ``spacing``, a fine crop around one organ costs only its own voxels (the cascade's
            training crops, :mod:`monai_sadaan.data.refine_crops`). ``None`` (default): the whole field of view.

    Returns:
        A :class:`TrunkPhantom`: ``image`` float32 HU (I, J, K), ``label`` int16 (I, J, K), RAS ``affine``,
        presence counted from the label map, and the field of view, phase and intensity mode.

    Raises:
        ValueError: unknown scenario, structure, field of view, phase or intensity mode; bad weights, shape,
            spacing, orientation, seed, min_voxels or crop (also a crop outside the field of view).
    """
    check_scenarios(scenario, TRUNK_SCENARIOS)
    structures = check_structures(structures)
    if isinstance(min_voxels, bool) or not isinstance(min_voxels, (int, np.integer)) or min_voxels < 1:
        raise ValueError(f"expected min_voxels as an integer >= 1, got {min_voxels!r}")
    if field_of_view != "random" and field_of_view not in FIELDS_OF_VIEW:
        raise ValueError(
            f"expected field_of_view 'random' or one of {', '.join(FIELDS_OF_VIEW)}, got {field_of_view!r}"
        )
    if phase != "random" and phase not in PHASES:
        raise ValueError(f"expected phase 'random' or one of {', '.join(PHASES)}, got {phase!r}")
    if intensity_mode not in INTENSITY_MODES:
        raise ValueError(f"expected intensity_mode one of {', '.join(INTENSITY_MODES)}, got {intensity_mode!r}")
    weights = check_fov_weights(fov_weights)
    shape_arg = _triple(shape, "shape", int)
    spacing_arg = _triple(spacing, "spacing", float)
    rngs = _case_rngs(scenario, seed, streams=6, salt=(zlib.crc32(b"trunk"),))
    grid_rng, patient_rng, scenario_rng, fov_rng, image_rng, phase_rng = rngs

    drawn_code = _draw_orientation(grid_rng)
    n_xy = int(grid_rng.integers(64, 129))
    n_z = int(grid_rng.integers(64, 129))
    square = grid_rng.random() < 0.7
    margin = grid_rng.uniform(1.03, 1.15)
    tight = grid_rng.random() < 0.08
    roll = grid_rng.uniform(-6.0, 6.0) * math.pi / 180.0
    include_arms = grid_rng.random() < 0.7
    code = (orientation or drawn_code).upper()
    parsed = parse_orientation(code)
    drawn_phase = PHASES[int(phase_rng.choice(3, p=_PHASE_WEIGHTS))]
    phase_name = drawn_phase if phase == "random" else phase

    plan = plan_scenario(scenario, scenario_rng, structures, TRUNK_SCENARIOS)
    patient = sample_patient(patient_rng, plan.removed)

    # field of view along z
    names = list(weights)
    w = np.array([weights[n] for n in names])
    if scenario == "partial_fov" and field_of_view == "random":
        w = np.array([0.0 if n in ("chest", "pelvis", "slab") else v for n, v in zip(names, w)])
        if w.sum() <= 0:
            names, w = ["abdomen"], np.array([1.0])
    fov_draw = str(names[int(fov_rng.choice(len(names), p=w / w.sum()))])
    fov_name = fov_draw if field_of_view == "random" else field_of_view
    z_lo, z_hi = _fov_z(fov_name, patient, fov_rng)

    # in-plane: the body (and the arms beside it when they are in the scan), a margin, often a square
    a_max, y_back, y_front = patient.outer_extent_xy(z_lo, z_hi)
    half_x = a_max
    if patient.arms_down and include_arms and z_hi > patient.level_z["L2"]:
        half_x = a_max + patient.extras["arm_gap"] + 2.0 * patient.extras["arm_r"]
    half_x *= margin if not tight else 0.93
    half_x = min(half_x, _MAX_FOV_MM / 2)  # the scanner's field of view: wide patients and arms get cut
    y_lo = y_back - patient.extras["table_pad"] - 30.0
    y_hi = y_front + 10.0
    if y_hi - y_lo > _MAX_FOV_MM:
        y_lo = y_hi - _MAX_FOV_MM
    if square:
        side = min(max(2 * half_x, y_hi - y_lo), _MAX_FOV_MM)
        yc = 0.5 * (y_lo + y_hi)
        box = np.array([[-side / 2, side / 2], [yc - side / 2, yc + side / 2], [z_lo, z_hi]])
    else:
        box = np.array([[-half_x, half_x], [y_lo, y_hi], [z_lo, z_hi]])

    fov_cut: FieldOfViewCut | None = None
    drawn_organs = [n for n in LABELLED_ORGANS if n not in plan.removed]
    if scenario == "partial_fov":
        extents = {}
        for n in drawn_organs:
            e = patient.organ_extent(n)
            if e[2, 1] > box[2, 0] and e[2, 0] < box[2, 1]:
                e = e.copy()
                e[2] = np.clip(e[2], box[2, 0], box[2, 1])
                extents[n] = e
        candidates = [n for n in extents if n in structures] or list(extents)
        if candidates:
            fov_cut = plan_fov_cut(scenario_rng, extents, candidates)
            _apply_fov_cut(box, fov_cut)

    # grid: square pixels in-plane, slices 0.6-5.5 mm apart (a thin slab gets fewer slices)
    render_box = box if crop is None else crop_fov_box(box, crop)
    ras_shape, ras_spacing = _ras_grid(parsed, shape_arg, spacing_arg, (0, 0, 0))
    extent_mm = render_box[:, 1] - render_box[:, 0]
    if not shape_arg:
        sp_xy = max(extent_mm[0], extent_mm[1]) / n_xy
        for axis in (0, 1):
            ras_shape[axis] = max(8, int(round(extent_mm[axis] / sp_xy)))
        nz = max(n_z, int(math.ceil(extent_mm[2] / 5.5)))
        nz = min(nz, 128, max(8, int(extent_mm[2] / 0.6)))
        ras_shape[2] = nz
    axes, final_spacing = _grid_axes(render_box, ras_shape, ras_spacing, shape_arg is not None, fov_cut)

    canvas = Canvas(*axes, structures=structures, roll=roll)
    streaks = render_patient(canvas, patient, plan.removed)
    imaging = sample_imaging(image_rng, phase_name, intensity_mode, float(final_spacing[2]), 2.0 * a_max)
    special = {}
    if intensity_mode == "ct" and phase_name == "arterial":
        special["spleen"] = _spleen_arterial_pattern(canvas, image_rng)
    image_ras = form_image(canvas.tissue, tuple(final_spacing), imaging, image_rng, streaks, canvas.axes, special)

    in_view = [v.name for v in patient.vertebrae if box[2, 0] < v.z_mid < box[2, 1]]
    fields = _case_fields(
        image_ras, canvas.label, axes, final_spacing, code, structures, min_voxels, scenario, seed, plan.removed,
        fov_cut,
    )
    return TrunkPhantom(
        **fields,
        field_of_view=fov_name,
        phase=phase_name,
        intensity_mode=intensity_mode,
        fov_box=box,
        imaging=imaging.metadata(),
        patient_info={
            "fat": round(float(patient.fat), 3),
            "pelvis_width": round(float(patient.pelvis_width), 3),
            "female_like": bool(patient.female),
            "arms_down": bool(patient.arms_down),
            "roll_deg": round(roll * 180.0 / math.pi, 2),
            "vertebrae_in_view": [in_view[0], in_view[-1]] if in_view else [],
        },
    )


def _spleen_arterial_pattern(canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    """Arciform (zebra) enhancement of the spleen in the arterial phase: +-35 HU bands inside the spleen."""
    from .physics import TISSUE_INDEX

    mask = canvas.tissue == TISSUE_INDEX["spleen"]
    out = np.zeros(canvas.shape, dtype=np.float32)
    if not mask.any():
        return out
    idx = np.nonzero(mask)
    pts = [canvas.axes[a][idx[a]] for a in range(3)]
    k = rng.normal(size=3)
    k /= np.linalg.norm(k)
    wl = rng.uniform(12.0, 25.0)
    warp = rng.normal(size=3) * 0.08
    phase = (k[0] * pts[0] + k[1] * pts[1] + k[2] * pts[2]) * 2 * math.pi / wl
    phase += 2.0 * np.sin(warp[0] * pts[0] + warp[1] * pts[1] + warp[2] * pts[2])
    out[idx] = (rng.uniform(20.0, 45.0) * np.sin(phase)).astype(np.float32)
    return out
