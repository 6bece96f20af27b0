"""CT-like synthetic abdominal phantoms with absent organs, for training and testing SADAAn.

One call to :func:`generate_phantom` draws a patient (body size and shape, organ positions, sizes, tilts and
deformations, tissue densities), a voxel grid (size, anisotropic spacing, orientation) and an absence scenario, and
renders a CT-like volume in Hounsfield units with its integer label map.

Anatomy (world coordinates in mm, nibabel's RAS+: ``+x`` patient Right, ``+y`` Anterior, ``+z`` Superior; the
body's axis is ``x = y = 0``):

- air outside the body, an elliptical body with subcutaneous fat, a muscle wall and visceral fat; lower ribs around
  the upper abdomen; a CT table under the back when the field of view reaches it;
- lumbar spine (vertebral bodies with cortex, discs, canal, posterior arch), paraspinal and psoas muscles, aorta
  (left of the midline) and inferior vena cava (right);
- liver (two lobes, patient's right), gallbladder, stomach (fluid and gas, left), spleen (posterior left, concave
  hilum), pancreas (a curved tube from the head at the duodenum to the tail at the splenic hilum), kidneys (bean
  shaped, cortex and medulla, hilum with sinus fat; the right one lower) and bowel loops with gas as distractors
  with organ-like densities.

Image formation: per-tissue HU with per-case variation (fatty liver included), smooth organ texture, Gaussian blur
(partial volume), a smooth multiplicative bias field on the attenuation (HU + 1000), Gaussian noise, and clipping to
the CT range [-1024, 3071].

The presence truth of each labelled structure is counted from the final label map (``min_voxels``), the way the
training transforms count it; a structure cut to a sliver by the edge of the volume is therefore absent.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .geometry import (
    all_orientation_codes,
    extent_to_box,
    orientation_affine,
    parse_orientation,
    reorient_from_ras,
    rotation_matrix,
)
from .scenarios import FieldOfViewCut, check_scenarios, plan_fov_cut, plan_scenario

__all__ = [
    "DEFAULT_STRUCTURES",
    "KNOWN_STRUCTURES",
    "TISSUE_HU",
    "Phantom",
    "check_structures",
    "generate_phantom",
    "structure_presence",
]

DEFAULT_STRUCTURES: dict[str, int] = {"left_kidney": 1, "right_kidney": 2, "liver": 3, "spleen": 4, "pancreas": 5}
"""The seed's five structures and their label values."""

KNOWN_STRUCTURES: tuple[str, ...] = (
    "left_kidney",
    "right_kidney",
    "liver",
    "spleen",
    "pancreas",
    "gallbladder",
    "stomach",
    "aorta",
    "inferior_vena_cava",
    "vertebrae",
)
"""Every anatomical structure the phantom draws and can label (``structures`` picks a subset and its values)."""

TISSUE_HU: dict[str, float] = {
    "air": -1000.0,
    "fat": -100.0,
    "muscle": 50.0,
    "liver": 60.0,
    "spleen": 48.0,
    "kidney_cortex": 36.0,
    "kidney_medulla": 26.0,
    "pancreas": 40.0,
    "blood": 40.0,
    "gallbladder": 12.0,
    "fluid": 15.0,
    "bowel": 30.0,
    "gas": -850.0,
    "lung": -820.0,
    "cancellous_bone": 230.0,
    "cortical_bone": 750.0,
    "rib": 500.0,
    "disc": 90.0,
    "csf": 15.0,
    "table": 150.0,
    "clip": 1800.0,
}
"""Mean density (HU) of each tissue; every case shifts the organ and fat values by a few HU."""

_FINITE_ORGANS = ("stomach", "left_kidney", "right_kidney", "pancreas", "spleen", "liver", "gallbladder")
# Paint order: later organs overwrite earlier ones where they touch.
_ORGAN_PAINT_ORDER = ("stomach", "left_kidney", "right_kidney", "pancreas", "spleen", "liver", "gallbladder")
_SHAPE_RANGE = (48, 96)


# --------------------------------------------------------------------------------------------------------------------
# structures and presence
# --------------------------------------------------------------------------------------------------------------------
def check_structures(structures: Mapping[str, int]) -> dict[str, int]:
    """Validate a structure -> label-value mapping (a sequence of names means label values 1, 2, ... in order).

    Raises:
        ValueError: empty, a name outside :data:`KNOWN_STRUCTURES`, a value outside 1..32767, or a repeated value.
    """
    if isinstance(structures, Sequence) and not isinstance(structures, str):
        structures = {name: i + 1 for i, name in enumerate(structures)}
    if not isinstance(structures, Mapping) or not structures:
        raise ValueError(f"expected a non-empty mapping of structure name -> label value, got {structures!r}")
    out: dict[str, int] = {}
    for name, value in structures.items():
        if name not in KNOWN_STRUCTURES:
            raise ValueError(f"expected structure names from {', '.join(KNOWN_STRUCTURES)}, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= 32767:
            raise ValueError(f"expected label values as integers in 1..32767, got {name!r}: {value!r}")
        out[str(name)] = int(value)
    if len(set(out.values())) != len(out):
        raise ValueError(f"expected a distinct label value per structure, got {out}")
    return out


def structure_presence(
    label: np.ndarray, structures: Mapping[str, int], min_voxels: int = 20
) -> tuple[dict[str, bool], dict[str, int]]:
    """Presence of each structure in a label map: ``voxel count >= min_voxels``.

    Args:
        label: integer label map of any shape.
        structures: name -> label value.
        min_voxels: smallest voxel count that counts as present (at least 1).

    Returns:
        ``(present, counts)``: name -> bool and name -> voxel count.
    """
    if min_voxels < 1:
        raise ValueError(f"expected min_voxels >= 1, got {min_voxels}")
    values = np.asarray(label).ravel()
    counts = {name: int(np.count_nonzero(values == value)) for name, value in structures.items()}
    return {name: counts[name] >= min_voxels for name in structures}, counts


# --------------------------------------------------------------------------------------------------------------------
# the case
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class Phantom:
    """One synthetic CT case.

    Attributes:
        image: float32 HU volume, shape (I, J, K) in the voxel order of ``affine``.
        label: int16 label map, same shape; values from ``structures``, 0 elsewhere.
        affine: (4, 4) voxel-to-world affine, nibabel's RAS+ convention (mm).
        spacing: voxel size (mm) along the three voxel axes.
        scenario: the absence scenario's name.
        present: structure name -> presence (voxel count >= ``min_voxels``).
        structures: structure name -> label value.
        orientation: orientation code of the voxel axes (nibabel convention, e.g. ``"LPS"``).
        seed: the seed the case was drawn from.
        voxel_counts: structure name -> voxel count in ``label``.
        removed: organs the scenario took out of the anatomy (may include unlabelled ones).
        truncated: labelled structures present but touching a face of the volume (cut by the field of view).
        fov_cut: for ``"partial_fov"``, the edge moved into the anatomy; ``None`` otherwise.
        min_voxels: the presence threshold used for ``present``.
    """

    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    scenario: str
    present: dict[str, bool]
    structures: dict[str, int]
    orientation: str
    seed: int
    voxel_counts: dict[str, int] = field(default_factory=dict)
    removed: tuple[str, ...] = ()
    truncated: tuple[str, ...] = ()
    fov_cut: FieldOfViewCut | None = None
    min_voxels: int = 20

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel grid size (I, J, K)."""
        return tuple(int(s) for s in self.image.shape)  # type: ignore[return-value]

    def world_centroid(self, name: str) -> np.ndarray:
        """RAS world position (mm) of a labelled structure's centroid; NaN when it has no voxel."""
        idx = np.argwhere(self.label == self.structures[name])
        if idx.size == 0:
            return np.full(3, np.nan)
        return self.affine[:3, :3] @ idx.mean(axis=0) + self.affine[:3, 3]

    def metadata(self) -> dict:
        """JSON-ready description of the case (scenario, presence, geometry, what was removed or cut)."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "present": dict(self.present),
            "voxel_counts": dict(self.voxel_counts),
            "removed": list(self.removed),
            "truncated": list(self.truncated),
            "shape": list(self.shape),
            "spacing": [round(float(s), 6) for s in self.spacing],
            "orientation": self.orientation,
            "min_voxels": self.min_voxels,
        }


# --------------------------------------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class _Bumps:
    """A smooth random deformation: sum of a few plane waves in an organ's normalised local coordinates."""

    waves: np.ndarray  # (K, 3)
    phases: np.ndarray  # (K,)
    amplitudes: np.ndarray  # (K,)

    @classmethod
    def sample(cls, rng: np.random.Generator, count: int = 3, amplitude: tuple[float, float] = (0.03, 0.07)) -> _Bumps:
        directions = rng.normal(size=(count, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        waves = directions * rng.uniform(1.5, 3.5, size=(count, 1))
        return cls(waves, rng.uniform(0, 2 * math.pi, size=count), rng.uniform(*amplitude, size=count))

    @property
    def bound(self) -> float:
        return float(self.amplitudes.sum())

    def __call__(self, q0: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
        out = np.zeros(np.broadcast_shapes(q0.shape, q1.shape, q2.shape), dtype=np.float32)
        for (w0, w1, w2), phase, amp in zip(self.waves, self.phases, self.amplitudes):
            out += np.float32(amp) * np.sin(w0 * q0 + w1 * q1 + w2 * q2 + phase, dtype=np.float32)
        return out


@dataclass
class _Ellipsoid:
    """A deformed ellipsoid: inside where ``|q| - bumps(q) < 1`` with ``q = R^T (p - centre) / semi``."""

    centre: np.ndarray
    semi: np.ndarray
    rotation: np.ndarray
    bumps: _Bumps

    def scaled(self, k: float) -> _Ellipsoid:
        return _Ellipsoid(self.centre * k, self.semi * k, self.rotation, self.bumps)

    def extent(self) -> np.ndarray:
        half = np.sqrt(((self.rotation * self.semi[None, :]) ** 2).sum(axis=1)) * (1.0 + self.bumps.bound)
        return np.stack([self.centre - half, self.centre + half], axis=1)

    def local(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dx, dy, dz = (x - self.centre[0]).astype(np.float32), (y - self.centre[1]).astype(np.float32), (
            z - self.centre[2]
        ).astype(np.float32)
        r, s = self.rotation, self.semi
        return tuple(  # type: ignore[return-value]
            (dx * np.float32(r[0, j]) + dy * np.float32(r[1, j]) + dz * np.float32(r[2, j])) / np.float32(s[j])
            for j in range(3)
        )

    def radius(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Deformed normalised radius (< 1 inside) and the local coordinates."""
        q = self.local(x, y, z)
        return np.sqrt(q[0] ** 2 + q[1] ** 2 + q[2] ** 2) - self.bumps(*q), q


@dataclass
class _Tube:
    """A lobulated tube of varying radius around a polyline (the pancreas)."""

    points: np.ndarray  # (N, 3)
    radii: np.ndarray  # (N,)
    bumps: _Bumps
    wavelength: float

    def scaled(self, k: float) -> _Tube:
        return _Tube(self.points * k, self.radii * k, self.bumps, self.wavelength * k)

    def extent(self) -> np.ndarray:
        r = self.radii.max() * (1.0 + self.bumps.bound)
        return np.stack([self.points.min(axis=0) - r, self.points.max(axis=0) + r], axis=1)

    def radius(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Distance to the polyline over the local radius (< 1 inside)."""
        shape = np.broadcast_shapes(x.shape, y.shape, z.shape)
        best = np.full(shape, np.inf, dtype=np.float32)
        for a, b, ra, rb in zip(self.points[:-1], self.points[1:], self.radii[:-1], self.radii[1:]):
            ab = b - a
            t = ((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / float(ab @ ab)
            t = np.clip(t, 0.0, 1.0).astype(np.float32)
            dist = np.sqrt((x - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2 + (z - a[2] - t * ab[2]) ** 2)
            best = np.minimum(best, dist / (ra + t * (rb - ra)))
        w = np.float32(1.0 / self.wavelength)
        return best - self.bumps(x * w, y * w, z * w)


# --------------------------------------------------------------------------------------------------------------------
# the patient
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class _Patient:
    """Everything drawn about one patient, in mm at scale 1 (``scaled(k)`` gives the final sizes)."""

    body_a: float  # body half-width (left-right)
    body_b: float  # body half-depth (anterior-posterior)
    body_harmonics: np.ndarray  # (3, 2): amplitude, phase of cos(m theta), m = 2, 3, 4
    body_z_wave: tuple[float, float, float]  # amplitude, period, phase of the body's size along z
    fat_mm: float
    muscle_mm: float
    rib_phase: float
    organs: dict[str, _Ellipsoid | _Tube]
    liver_left_lobe: _Ellipsoid
    kidney_notch_depth: float
    spine_x: float
    spine_y: float
    vertebra_r: float
    disc_period: float
    disc_phase: float
    aorta: tuple[float, float, float]  # x, y, radius
    ivc: tuple[float, float, float, float]  # x, y, half-width, half-depth
    bowel: list[_Ellipsoid]
    colon: list[tuple[float, float, float, float]]  # x, y, radius, top z
    colon_gas: list[np.ndarray]  # x, y, z, radius of gas bubbles in the colon
    clips: list[np.ndarray]
    hu: dict[str, float]
    texture_hu: float
    table_gap: float
    lungs: list[_Ellipsoid]

    def scaled(self, k: float) -> _Patient:
        def s(v):
            return v * k

        return _Patient(
            body_a=s(self.body_a),
            body_b=s(self.body_b),
            body_harmonics=self.body_harmonics,
            body_z_wave=(self.body_z_wave[0], s(self.body_z_wave[1]), self.body_z_wave[2]),
            fat_mm=s(self.fat_mm),
            muscle_mm=s(self.muscle_mm),
            rib_phase=self.rib_phase,
            organs={n: o.scaled(k) for n, o in self.organs.items()},
            liver_left_lobe=self.liver_left_lobe.scaled(k),
            kidney_notch_depth=self.kidney_notch_depth,
            spine_x=s(self.spine_x),
            spine_y=s(self.spine_y),
            vertebra_r=s(self.vertebra_r),
            disc_period=s(self.disc_period),
            disc_phase=self.disc_phase,
            aorta=tuple(s(v) for v in self.aorta),  # type: ignore[arg-type]
            ivc=tuple(s(v) for v in self.ivc),  # type: ignore[arg-type]
            bowel=[b.scaled(k) for b in self.bowel],
            colon=[tuple(s(v) for v in c) for c in self.colon],  # type: ignore[misc]
            colon_gas=[g * k for g in self.colon_gas],
            clips=[c * k for c in self.clips],
            hu=self.hu,
            texture_hu=self.texture_hu,
            table_gap=s(self.table_gap),
            lungs=[lung.scaled(k) for lung in self.lungs],
        )

    def organ_extent(self, name: str) -> np.ndarray:
        ext = self.organs[name].extent()
        if name == "liver":
            left = self.liver_left_lobe.extent()
            ext = np.stack([np.minimum(ext[:, 0], left[:, 0]), np.maximum(ext[:, 1], left[:, 1])], axis=1)
        return ext


def _jitter(rng: np.random.Generator, values: Sequence[float], scale: float) -> np.ndarray:
    return np.asarray(values, dtype=float) + rng.uniform(-scale, scale, size=len(values))


def _sample_patient(rng: np.random.Generator, removed: Sequence[str]) -> _Patient:
    """Draw a patient at scale 1 (body half-width about 90 mm). Removed organs are still drawn (so that the rest of
    the anatomy does not depend on the scenario) and then left out when painting."""
    u = rng.uniform
    deg = math.pi / 180.0
    body_a = 90.0 * u(0.92, 1.08)
    body_b = 68.0 * u(0.9, 1.1)
    harmonics = np.stack([u(0.0, 0.02, size=3), u(0, 2 * math.pi, size=3)], axis=1)

    organs: dict[str, _Ellipsoid | _Tube] = {}

    def size(semi: Sequence[float], j: float = 0.12) -> np.ndarray:
        return np.asarray(semi, dtype=float) * u(1 - j, 1 + j, size=3)

    # liver: right lobe + left lobe sharing one deformation
    liver_bumps = _Bumps.sample(rng)
    liver_rot = rotation_matrix(*(u(-8, 8, size=3) * deg))
    organs["liver"] = _Ellipsoid(_jitter(rng, (34, 0, 36), 5), size((42, 42, 33)), liver_rot, liver_bumps)
    left_lobe = _Ellipsoid(_jitter(rng, (-14, 22, 44), 4), size((28, 17, 18), 0.2), liver_rot, liver_bumps)

    # kidneys: upper pole tilted medially, hilum turned anteromedially; the right one lower under the liver
    hypertrophy = 1.12 if len({"left_kidney", "right_kidney"} & set(removed)) == 1 else 1.0
    for name, x, z in (("left_kidney", -38.0, -4.0), ("right_kidney", 38.0, -13.0)):
        medial = 1.0 if x < 0 else -1.0
        rot = rotation_matrix(u(-6, 6) * deg, medial * u(8, 20) * deg, medial * u(20, 40) * deg)
        semi = size((14, 12, 28), 0.1)
        if name not in removed:
            semi = semi * hypertrophy  # the remaining kidney grows after a unilateral nephrectomy
        organs[name] = _Ellipsoid(_jitter(rng, (x, -30, z), 5), semi, rot, _Bumps.sample(rng, amplitude=(0.02, 0.05)))

    organs["spleen"] = _Ellipsoid(
        _jitter(rng, (-54, -18, 34), 5),
        size((12, 30, 24), 0.18),
        rotation_matrix(u(-10, 10) * deg, u(-10, 10) * deg, u(-45, -20) * deg),
        _Bumps.sample(rng),
    )
    organs["gallbladder"] = _Ellipsoid(
        _jitter(rng, (26, 26, 8), 4), size((9, 7, 14), 0.2), rotation_matrix(u(-25, -5) * deg, u(-15, 15) * deg, 0.0),
        _Bumps.sample(rng, amplitude=(0.01, 0.04)),
    )
    organs["stomach"] = _Ellipsoid(
        _jitter(rng, (-26, 20, 36), 5), size((20, 17, 25), 0.2), rotation_matrix(*(u(-15, 15, size=3) * deg)),
        _Bumps.sample(rng),
    )
    # pancreas: head at the duodenum (right of the midline), tail at the splenic hilum
    base = np.array([[18, 2, 2], [6, 9, 8], [-12, 8, 13], [-32, -2, 19], [-46, -12, 24]], dtype=float)
    points = base + u(-3, 3, size=base.shape) + np.array([0, u(-4, 4), u(-5, 5)])
    radii = np.array([11.0, 8.0, 7.0, 6.5, 6.0]) * u(0.85, 1.15)
    organs["pancreas"] = _Tube(points, radii, _Bumps.sample(rng, amplitude=(0.05, 0.1)), wavelength=12.0)

    bowel = []
    for _ in range(int(rng.integers(8, 15))):
        centre = np.array([u(-55, 55), u(-5, 45), u(-75, 12)])
        bowel.append(_Ellipsoid(centre, size((10, 10, 10), 0.3), rotation_matrix(*(u(0, 2 * math.pi, size=3))),
                                _Bumps.sample(rng, amplitude=(0.05, 0.12))))
    colon = [(u(58, 66), u(-12, 0), u(8, 11), u(-5, 20)), (-u(60, 68), u(-14, -2), u(7, 10), u(-10, 15))]
    colon_gas = []
    for cx, cy, cr, top in colon:
        for _ in range(int(rng.integers(2, 6))):
            r = cr * u(0.3, 0.6)
            colon_gas.append(np.array([cx + u(-0.3, 0.3) * cr, cy + u(0.0, 0.4) * cr, u(-90.0, top - r), r]))
    for organ in removed:
        if organ in ("left_kidney", "right_kidney") and rng.random() < 0.5:
            # a bowel loop falls into the empty renal fossa
            c = organs[organ].centre
            bowel.append(_Ellipsoid(c + u(-3, 3, size=3), size((9, 9, 14), 0.2), np.eye(3), _Bumps.sample(rng)))
    clips = []
    for organ in removed:
        if organ in ("left_kidney", "right_kidney", "spleen") and rng.random() < 0.6:
            # surgical clips at the former hilum (medial side of the organ)
            c = organs[organ].centre
            hilum = c + np.array([np.sign(-c[0]) * 10.0, 4.0, 0.0])
            clips.extend(hilum + u(-6, 6, size=3) for _ in range(int(rng.integers(2, 5))))

    fatty_liver = rng.random() < 0.15
    hu = {name: value for name, value in TISSUE_HU.items()}
    for name in ("liver", "spleen", "kidney_cortex", "kidney_medulla", "pancreas", "muscle", "blood", "bowel"):
        hu[name] = TISSUE_HU[name] + u(-8, 8)
    hu["fat"] = TISSUE_HU["fat"] + u(-15, 15)
    if fatty_liver:
        hu["liver"] = u(5, 35)

    # lung bases: dip behind and beside the liver dome and the spleen
    liver_top = max(organs["liver"].extent()[2, 1], left_lobe.extent()[2, 1])
    lungs = []
    for side in (1.0, -1.0):
        semi = size((36, 40, 50), 0.1)
        centre = np.array([side * u(40, 50), u(-20, -8), liver_top + semi[2] - u(12, 28)])
        lungs.append(_Ellipsoid(centre, semi, rotation_matrix(u(-0.3, -0.1), 0.0, 0.0), _Bumps.sample(rng, amplitude=(0.02, 0.05))))

    return _Patient(
        body_a=body_a,
        body_b=body_b,
        body_harmonics=harmonics,
        body_z_wave=(u(0.0, 0.04), u(150, 300), u(0, 2 * math.pi)),
        fat_mm=u(4, 14),
        muscle_mm=u(4, 8),
        rib_phase=u(0, 1),
        organs=organs,
        liver_left_lobe=left_lobe,
        kidney_notch_depth=u(0.4, 0.55),
        spine_x=u(-2, 2),
        spine_y=-body_b * 0.5 + u(-3, 3),
        vertebra_r=u(10, 13),
        disc_period=u(22, 28),
        disc_phase=u(0, 1),
        aorta=(u(-10, -5), -body_b * 0.5 + 20 + u(-2, 2), u(6, 8)),
        ivc=(u(12, 17), -body_b * 0.5 + 22 + u(-2, 2), u(7, 9), u(5, 7)),
        bowel=bowel,
        colon=colon,
        colon_gas=colon_gas,
        clips=clips,
        hu=hu,
        texture_hu=u(2, 7),
        table_gap=u(3, 12),
        lungs=lungs,
    )


# --------------------------------------------------------------------------------------------------------------------
# rendering on a RAS-ordered grid
# --------------------------------------------------------------------------------------------------------------------
class _Canvas:
    """HU and label arrays in RAS voxel order, with the world coordinate (mm) of every voxel centre per axis."""

    def __init__(self, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray, structures: Mapping[str, int]):
        self.axes = (xs, ys, zs)
        self.hu = np.full((len(xs), len(ys), len(zs)), TISSUE_HU["air"], dtype=np.float32)
        self.label = np.zeros(self.hu.shape, dtype=np.int16)
        self.structures = structures

    def grid(self, box: tuple[slice, slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        box = box or (slice(None),) * 3
        xs, ys, zs = (a[b].astype(np.float32) for a, b in zip(self.axes, box))
        return xs[:, None, None], ys[None, :, None], zs[None, None, :]

    def box(self, extent: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices of the voxels whose centres lie inside a world extent (3, 2); None if none."""
        return extent_to_box(self.axes, extent)

    def paint(self, box, mask: np.ndarray, hu: float | np.ndarray, name: str | None = None) -> None:
        """Set HU (a value or an array the shape of the box) and the label (of ``name``, or 0) where ``mask``."""
        mask = np.broadcast_to(mask, self.hu[box].shape)
        sub = self.hu[box]
        sub[mask] = hu if np.isscalar(hu) else np.broadcast_to(hu, mask.shape)[mask]
        self.label[box][mask] = self.structures.get(name, 0) if name else 0


def _render(canvas: _Canvas, p: _Patient, removed: Sequence[str]) -> None:
    hu = p.hu
    X, Y, Z = canvas.grid()
    full = (slice(None),) * 3

    # body cross-section: ellipse with a few harmonics, its size breathing slowly along z
    theta = np.arctan2(Y / p.body_b, X / p.body_a)
    edge = 1.0 + sum(a * np.cos((m + 2) * theta + ph) for m, (a, ph) in enumerate(p.body_harmonics))
    rho2d = np.sqrt((X / p.body_a) ** 2 + (Y / p.body_b) ** 2) / edge
    amp, period, phase = p.body_z_wave
    rho = (rho2d / (1.0 + amp * np.sin(2 * math.pi * Z / period + phase))).astype(np.float32)
    mean_r = 0.5 * (p.body_a + p.body_b)
    fat_in = 1.0 - p.fat_mm / mean_r
    muscle_in = fat_in - p.muscle_mm / mean_r
    canvas.paint(full, rho <= 1.0, hu["fat"])
    canvas.paint(full, rho <= fat_in, hu["muscle"])
    canvas.paint(full, rho <= muscle_in, hu["fat"] + 10.0)

    # CT table under the back
    table_top = -p.body_b * (1.0 + float(p.body_harmonics[:, 0].sum())) - p.table_gap
    canvas.paint(full, (Y < table_top) & (Y > table_top - 6.0) & (np.abs(X) < 1.2 * p.body_a), hu["table"])

    # lower ribs: slanted bands near the inner wall, lateral and posterior, above the kidneys' middle
    rib_ring = (rho > muscle_in - 0.06) & (rho <= muscle_in + 0.01)
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    rib_sector = (sin_t < 0.55) & ~((sin_t < -0.6) & (np.abs(cos_t) < 0.45))
    rib_z = ((Z + 18.0 * sin_t) / 24.0 + p.rib_phase) % 1.0 < 0.3
    canvas.paint(full, rib_ring & rib_sector & rib_z & (Z > -5.0), hu["rib"])

    # bowel loops and colon (distractors with organ-like densities, some gas)
    for loop in p.bowel:
        box = canvas.box(loop.extent())
        if box is None:
            continue
        r, q = loop.radius(*canvas.grid(box))
        canvas.paint(box, r < 1.0, hu["bowel"])
        canvas.paint(box, (r < 0.55) & (q[2] > 0.1), hu["gas"])
    for cx, cy, cr, top in p.colon:
        mask = ((X - cx) ** 2 + (Y - cy) ** 2 < cr**2) & (Z < top)
        canvas.paint(full, mask, hu["bowel"] - 10.0)
    for bubble in p.colon_gas:
        box = canvas.box(np.stack([bubble[:3] - bubble[3], bubble[:3] + bubble[3]], axis=1))
        if box is not None:
            x, y, z = canvas.grid(box)
            canvas.paint(box, (x - bubble[0]) ** 2 + (y - bubble[1]) ** 2 + (z - bubble[2]) ** 2 < bubble[3] ** 2, hu["gas"])

    # lung bases (air with a little texture), inside the muscle wall
    for lung in p.lungs:
        box = canvas.box(lung.extent())
        if box is None:
            continue
        r, _ = lung.radius(*canvas.grid(box))
        canvas.paint(box, (r < 1.0) & (rho[box] <= muscle_in), hu["lung"])

    # spine, muscles, vessels: cross-sections repeated along z
    sx, sy, vr = p.spine_x, p.spine_y, p.vertebra_r
    dist_body = np.sqrt((X - sx) ** 2 + (Y - sy) ** 2)
    canal_y = sy - vr - 6.0
    dist_canal = np.sqrt((X - sx) ** 2 + (Y - canal_y) ** 2)
    psoas_r = 4.0 + 6.0 / (1.0 + np.exp(Z / 25.0))
    for side in (-1.0, 1.0):
        canvas.paint(full, ((X - side * 18.0) / 12.0) ** 2 + ((Y - (canal_y - 4.0)) / 9.0) ** 2 < 1.0, hu["muscle"])
        psoas = ((X - sx - side * (vr + psoas_r)) / psoas_r) ** 2 + ((Y - sy) / (0.9 * psoas_r)) ** 2 < 1.0
        canvas.paint(full, psoas, hu["muscle"])
    disc = ((Z / p.disc_period + p.disc_phase) % 1.0) < 0.22
    arch = (dist_canal < 10.0) | ((np.abs(X - sx) < 3.0) & (Y < canal_y) & (Y > canal_y - 16.0))
    canvas.paint(full, arch & ~disc, hu["cortical_bone"] - 150.0, "vertebrae")
    canvas.paint(full, dist_canal < 6.0, hu["csf"])
    canvas.paint(full, (dist_body < vr) & ~disc, hu["cancellous_bone"], "vertebrae")
    canvas.paint(full, (dist_body < vr) & (dist_body > vr - 1.8) & ~disc, hu["cortical_bone"], "vertebrae")
    canvas.paint(full, (dist_body < vr) & disc, hu["disc"])
    ax_, ay_, ar_ = p.aorta
    canvas.paint(full, (X - ax_) ** 2 + (Y - ay_) ** 2 < ar_**2, hu["blood"], "aorta")
    ix, iy, iw, idp = p.ivc
    canvas.paint(full, ((X - ix) / iw) ** 2 + ((Y - iy) / idp) ** 2 < 1.0, hu["blood"], "inferior_vena_cava")

    # organs
    for name in _ORGAN_PAINT_ORDER:
        if name in removed:
            continue
        organ = p.organs[name]
        box = canvas.box(p.organ_extent(name))
        if box is None:
            continue
        x, y, z = canvas.grid(box)
        if name == "pancreas":
            r = organ.radius(x, y, z)  # type: ignore[union-attr]
            values = np.where(np.sin(0.9 * x) * np.sin(0.8 * y) * np.sin(0.9 * z) > 0.55, hu["fat"] * 0.4, hu["pancreas"])
            canvas.paint(box, r < 1.0, values.astype(np.float32), name)
        elif name == "liver":
            r, _ = organ.radius(x, y, z)  # type: ignore[union-attr]
            r_left, _ = p.liver_left_lobe.radius(x, y, z)
            canvas.paint(box, (r < 1.0) | (r_left < 1.0), hu["liver"], name)
        elif name in ("left_kidney", "right_kidney"):
            r, q = organ.radius(x, y, z)  # type: ignore[union-attr]
            medial = 1.0 if organ.centre[0] < 0 else -1.0  # type: ignore[union-attr]
            notch = ((medial * q[0] - 1.0) / (2.0 * p.kidney_notch_depth)) ** 2 + (q[1] / 0.4) ** 2 + (q[2] / 0.45) ** 2 < 1.0
            values = np.where(r > 0.72, hu["kidney_cortex"], hu["kidney_medulla"]).astype(np.float32)
            canvas.paint(box, (r < 1.0) & ~notch, values, name)
            canvas.paint(box, (r < 1.0) & notch, hu["fat"] + 30.0)
        elif name == "spleen":
            r, q = organ.radius(x, y, z)  # type: ignore[union-attr]
            hilum = ((q[0] - 1.15) / 0.6) ** 2 + (q[1] / 0.75) ** 2 + (q[2] / 0.75) ** 2 < 1.0
            canvas.paint(box, (r < 1.0) & ~hilum, hu["spleen"], name)
        elif name == "stomach":
            r, q = organ.radius(x, y, z)  # type: ignore[union-attr]
            canvas.paint(box, r < 1.0, hu["muscle"] - 10.0, name)  # wall
            canvas.paint(box, (r < 0.85) & (y - organ.centre[1] <= 0.35 * organ.semi[1]), hu["fluid"], name)  # type: ignore[union-attr]
            canvas.paint(box, (r < 0.85) & (y - organ.centre[1] > 0.35 * organ.semi[1]), hu["gas"], name)  # type: ignore[union-attr]
        else:  # gallbladder
            r, _ = organ.radius(x, y, z)  # type: ignore[union-attr]
            canvas.paint(box, r < 1.0, hu["gallbladder"], name)

    # surgical clips: one bright voxel each
    for clip in p.clips:
        idx = [int(np.argmin(np.abs(axis - c))) for axis, c in zip(canvas.axes, clip)]
        if all(0 < i < len(a) - 1 for i, a in zip(idx, canvas.axes)):
            canvas.hu[tuple(idx)] = hu["clip"]
            canvas.label[tuple(idx)] = 0


def _image_formation(canvas: _Canvas, p: _Patient, rng: np.random.Generator) -> np.ndarray:
    """Texture, blur, bias field, noise and clipping of the painted HU map."""
    image = canvas.hu
    shape = image.shape
    # smooth texture inside the body
    texture = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma=1.5)
    texture *= np.float32(p.texture_hu / max(float(texture.std()), 1e-6))
    image += np.where(image > -500.0, texture, np.float32(0.0))
    # partial volume and system blur: about 0.5 to 1 voxel
    image = ndimage.gaussian_filter(image, sigma=rng.uniform(0.45, 0.9, size=3).tolist(), mode="nearest")
    # multiplicative bias on attenuation: a smooth quadratic in normalised coordinates, a few percent
    coords = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    log_bias = np.zeros((1, 1, 1), dtype=np.float32)
    for axis, c in enumerate(coords):
        view = [1, 1, 1]
        view[axis] = -1
        a1, a2 = rng.uniform(-0.02, 0.02, size=2)
        log_bias = log_bias + (np.float32(a1) * c + np.float32(a2) * c**2).reshape(view)
    bias = np.exp(log_bias).astype(np.float32)
    image = (image + np.float32(1000.0)) * bias - np.float32(1000.0)
    # quantum noise
    image += rng.standard_normal(shape, dtype=np.float32) * np.float32(rng.uniform(6.0, 20.0))
    np.clip(image, -1024.0, 3071.0, out=image)
    return image.astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------------------------------
# the public generator
# --------------------------------------------------------------------------------------------------------------------
def _triple(value: object, name: str, kind: type) -> tuple | None:
    """A grid argument as one value per voxel axis: ``None`` stays ``None``, one value is repeated three times.

    ``kind=int``: integers >= 4 (voxels); ``kind=float``: positive finite numbers (mm). Booleans are refused.

    Raises:
        ValueError: not one or three values of the kind.
    """
    if value is None:
        return None
    values = tuple(value) if isinstance(value, (Sequence, np.ndarray)) else (value,) * 3
    if len(values) != 3:
        raise ValueError(f"expected {name} as one value or three values (one per voxel axis), got {value!r}")
    if kind is int:
        if any(not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 4 for v in values):
            raise ValueError(f"expected {name} as integers >= 4 voxels, got {value!r}")
        return tuple(int(v) for v in values)
    if any(not isinstance(v, (int, float, np.number)) or isinstance(v, bool) or not float(v) > 0
           or not math.isfinite(float(v)) for v in values):
        raise ValueError(f"expected {name} as positive finite numbers (mm), got {value!r}")
    return tuple(float(v) for v in values)


def _case_rngs(scenario: str, seed: int, streams: int = 4, salt: Sequence[int] = ()) -> list[np.random.Generator]:
    """``streams`` independent generators for one case, from ``(seed, crc32(scenario), *salt)``.

    Raises:
        ValueError: ``seed`` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"expected a non-negative integer seed, got {seed!r}")
    sequence = np.random.SeedSequence([int(seed), zlib.crc32(scenario.encode("utf-8")), *salt])
    return [np.random.default_rng(s) for s in sequence.spawn(streams)]


def _draw_orientation(rng: np.random.Generator) -> str:
    """A random orientation code: the common ``RAS`` / ``LPS`` / ``LAS`` half of the time, any code otherwise."""
    codes = all_orientation_codes()
    common = ("RAS", "LPS", "LAS")
    return common[int(rng.integers(3))] if rng.random() < 0.5 else codes[int(rng.integers(len(codes)))]


def _ras_grid(
    parsed: Sequence[tuple[int, int]],
    shape_arg: tuple[int, ...] | None,
    spacing_arg: tuple[float, ...] | None,
    default_shape: Sequence[int],
) -> tuple[list[int], list[float | None]]:
    """Voxel counts and spacings given per voxel axis, laid out per RAS axis (``default_shape`` without a shape)."""
    ras_shape = [0, 0, 0]
    ras_spacing: list[float | None] = [None, None, None]
    for j, (axis, _) in enumerate(parsed):
        ras_shape[axis] = shape_arg[j] if shape_arg else default_shape[j]
        ras_spacing[axis] = spacing_arg[j] if spacing_arg else None
    return ras_shape, ras_spacing


def _apply_fov_cut(box: np.ndarray, fov_cut: FieldOfViewCut) -> None:
    """Move one edge of the (3, 2) field-of-view ``box`` (in place) to the cut, keeping at least 45% of its length
    on the kept side."""
    lo, hi = box[fov_cut.axis]
    length = hi - lo
    if fov_cut.side > 0:
        box[fov_cut.axis] = [min(lo, fov_cut.position - 0.45 * length), fov_cut.position]
    else:
        box[fov_cut.axis] = [fov_cut.position, max(hi, fov_cut.position + 0.45 * length)]


def _grid_axes(
    box: np.ndarray,
    ras_shape: Sequence[int],
    ras_spacing: Sequence[float | None],
    fixed_shape: bool,
    fov_cut: FieldOfViewCut | None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Voxel centres (mm) per RAS axis over the field of view ``box``, and the spacing per RAS axis.

    An axis without a spacing divides the box into ``ras_shape`` voxels. An axis with one gets as many voxels as fit
    the box (unless ``fixed_shape``), centred on the box, or kept against the cut edge of a ``fov_cut`` on that axis.
    """
    axes = []
    final_spacing = np.zeros(3)
    for axis in range(3):
        lo, hi = box[axis]
        n = ras_shape[axis]
        if ras_spacing[axis] is not None:
            sp = float(ras_spacing[axis])  # type: ignore[arg-type]
            if not fixed_shape:
                n = max(4, int(round((hi - lo) / sp)))
            length = n * sp
            if fov_cut is not None and fov_cut.axis == axis:
                lo = hi - length if fov_cut.side > 0 else lo
            else:
                lo = 0.5 * (lo + hi) - 0.5 * length
        else:
            sp = (hi - lo) / n
        final_spacing[axis] = sp
        axes.append(lo + (np.arange(n) + 0.5) * sp)
    return axes, final_spacing


def _case_fields(
    image_ras: np.ndarray,
    label_ras: np.ndarray,
    axes: Sequence[np.ndarray],
    final_spacing: np.ndarray,
    code: str,
    structures: Mapping[str, int],
    min_voxels: int,
    scenario: str,
    seed: int,
    removed: Sequence[str],
    fov_cut: FieldOfViewCut | None,
) -> dict:
    """The :class:`Phantom` fields of a rendered case: the arrays re-laid from RAS to ``code``, their affine and
    spacing, presence counted from the label map, and the present structures touching a face of the volume.

    Args:
        image_ras, label_ras: the image and the label map in RAS voxel order.
        axes: voxel centres (mm) per RAS axis.
        final_spacing: voxel size (mm) per RAS axis.
        code: orientation code of the voxel axes.
        structures, min_voxels: labelled structures and the presence threshold.
        scenario, seed, removed, fov_cut: stored as given.

    Returns:
        Keyword arguments for :class:`Phantom` (or a subclass, with its own fields added).
    """
    parsed = parse_orientation(code)
    image = reorient_from_ras(image_ras, code)
    label = reorient_from_ras(label_ras, code)
    voxel_spacing = tuple(float(final_spacing[axis]) for axis, _ in parsed)
    origin = np.zeros(3)
    for axis, sign in parsed:
        origin[axis] = axes[axis][0] if sign > 0 else axes[axis][-1]
    affine = orientation_affine(code, voxel_spacing, origin)

    present, counts = structure_presence(label, structures, min_voxels)
    faces = [label_ras[0], label_ras[-1], label_ras[:, 0], label_ras[:, -1], label_ras[:, :, 0], label_ras[:, :, -1]]
    on_edge = set(np.unique(np.concatenate([f.ravel() for f in faces])).tolist())
    truncated = tuple(n for n, v in structures.items() if present[n] and v in on_edge)
    return {
        "image": image,
        "label": label,
        "affine": affine,
        "spacing": voxel_spacing,
        "scenario": scenario,
        "present": present,
        "structures": dict(structures),
        "orientation": code,
        "seed": int(seed),
        "voxel_counts": counts,
        "removed": tuple(removed),
        "truncated": truncated,
        "fov_cut": fov_cut,
        "min_voxels": int(min_voxels),
    }


def generate_phantom(
    scenario: str = "normal",
    seed: int = 0,
    structures: Mapping[str, int] = DEFAULT_STRUCTURES,
    shape: int | Sequence[int] | None = None,
    spacing: float | Sequence[float] | None = None,
    orientation: str | None = None,
    min_voxels: int = 20,
) -> Phantom:
    """Draw one CT-like abdominal phantom.

    The case is a pure function of ``(scenario, seed)`` and the grid arguments: the patient is drawn from its own
    random stream, so giving ``orientation`` (or ``structures``) changes the layout of the arrays, not the patient.

    Args:
        scenario: one of :data:`~monai_sadaan.data.scenarios.SCENARIOS`.
        seed: non-negative integer.
        structures: labelled structures, name -> label value (names from :data:`KNOWN_STRUCTURES`).
        shape: voxels per voxel axis (one int or three); default random in 48..96 per axis.
        spacing: voxel size (mm) per voxel axis; default: the field of view divided by ``shape``. With both
            ``shape`` and ``spacing`` the field of view is fixed and the patient is scaled to fit it.
        orientation: nibabel orientation code of the voxel axes (``"RAS"``, ``"LPS"``, ``"PLI"``...); default:
            random, the common ``RAS`` / ``LPS`` / ``LAS`` half of the time.
        min_voxels: smallest voxel count of a structure that counts as present.

    Returns:
        A :class:`Phantom`: ``image`` float32 HU (I, J, K), ``label`` int16 (I, J, K), RAS ``affine``, presence.

    Raises:
        ValueError: unknown scenario or structure, bad shape / spacing / orientation / seed / min_voxels.
    """
    check_scenarios(scenario)
    structures = check_structures(structures)
    if isinstance(min_voxels, bool) or not isinstance(min_voxels, (int, np.integer)) or min_voxels < 1:
        raise ValueError(f"expected min_voxels as an integer >= 1, got {min_voxels!r}")
    shape_arg = _triple(shape, "shape", int)
    spacing_arg = _triple(spacing, "spacing", float)
    grid_rng, patient_rng, scenario_rng, image_rng = _case_rngs(scenario, seed)

    # grid draws happen whether or not the caller fixes them, so the patient never depends on the grid arguments
    drawn_code = _draw_orientation(grid_rng)
    drawn_shape = tuple(int(v) for v in grid_rng.integers(_SHAPE_RANGE[0], _SHAPE_RANGE[1] + 1, size=3))
    k_drawn = grid_rng.uniform(0.85, 1.15)
    margins_lr = grid_rng.uniform(1.08, 1.22)
    margin_ant, margin_post = grid_rng.uniform(1.06, 1.2), grid_rng.uniform(1.1, 1.3)
    margin_sup, margin_inf = grid_rng.uniform(6.0, 28.0), grid_rng.uniform(6.0, 28.0)
    offset_lr = grid_rng.uniform(-0.04, 0.04)
    code = (orientation or drawn_code).upper()
    parsed = parse_orientation(code)

    plan = plan_scenario(scenario, scenario_rng, structures)
    patient = _sample_patient(patient_rng, plan.removed)

    # field of view at scale 1, in RAS patient axes: body across, all organs (removed ones too) along z
    organ_ext = np.stack([patient.organ_extent(n) for n in _FINITE_ORGANS])
    z_lo, z_hi = organ_ext[:, 2, 0].min() - margin_inf, organ_ext[:, 2, 1].max() + margin_sup
    box1 = np.array(
        [
            [(-1.0 + offset_lr) * patient.body_a * margins_lr, (1.0 + offset_lr) * patient.body_a * margins_lr],
            [-patient.body_b * margin_post, patient.body_b * margin_ant],
            [z_lo, z_hi],
        ]
    )
    ras_shape, ras_spacing = _ras_grid(parsed, shape_arg, spacing_arg, drawn_shape)
    if shape_arg is not None and spacing_arg is not None:
        fixed = np.array([ras_shape[a] * ras_spacing[a] for a in range(3)])
        k = float(np.min(fixed / (box1[:, 1] - box1[:, 0])))
    else:
        k = k_drawn
    patient = patient.scaled(k)
    box = box1 * k
    organ_ext = organ_ext * k
    drawn = [n for n in _FINITE_ORGANS if n not in plan.removed]

    fov_cut = None
    if scenario == "partial_fov":
        candidates = [n for n in drawn if n in structures] or drawn
        extents = {n: patient.organ_extent(n) for n in candidates}
        fov_cut = plan_fov_cut(scenario_rng, extents, candidates)
        _apply_fov_cut(box, fov_cut)

    # final grid per RAS axis; a fixed field of view keeps the body / organs centred, or the cut edge in place
    axes, final_spacing = _grid_axes(box, ras_shape, ras_spacing, shape_arg is not None, fov_cut)

    canvas = _Canvas(*axes, structures=structures)
    _render(canvas, patient, plan.removed)
    image_ras = _image_formation(canvas, patient, image_rng)

    fields = _case_fields(
        image_ras, canvas.label, axes, final_spacing, code, structures, min_voxels, scenario, seed, plan.removed,
        fov_cut,
    )
    return Phantom(**fields)
