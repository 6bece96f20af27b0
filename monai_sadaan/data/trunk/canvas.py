"""Painting on the output grid: a tissue-class map and a label map in RAS voxel order, written through local
bounding boxes, and the smooth shape templates the anatomy is made of.

Coordinates: world mm, nibabel RAS+ (``+x`` Right, ``+y`` Anterior, ``+z`` Superior). The patient may lie rotated
about the body's long axis; :class:`Canvas` hands out *patient* coordinates (``X``, ``Y`` of shape (bx, by, 1) and
``Z`` of shape (1, 1, bz)) so that every template is written in the patient's frame and broadcast over a box.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..geometry import extent_to_box
from .physics import TISSUE_INDEX, TISSUES

__all__ = ["KEEP", "Canvas", "Deform", "Ellipsoid", "Tube", "smooth_path"]

KEEP = "<keep>"
"""``name`` for :meth:`Canvas.paint` that changes the tissue but keeps the label (vessels inside an organ)."""

Box = tuple[slice, slice, slice]


def smooth_path(points: np.ndarray, radii: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample a polyline with a Catmull-Rom spline every ``step`` mm.

    Args:
        points: (N, 3) control points, N >= 2.
        radii: (N,) radius at each control point.
        step: spacing of the output points (mm).

    Returns:
        ``(points, radii)``: (M, 3) and (M,).
    """
    pts = np.asarray(points, dtype=float)
    rad = np.asarray(radii, dtype=float)
    if len(pts) < 3:
        length = float(np.linalg.norm(pts[-1] - pts[0]))
        t = np.linspace(0.0, 1.0, max(2, int(math.ceil(length / step)) + 1))
        return pts[0] + t[:, None] * (pts[-1] - pts[0]), rad[0] + t * (rad[-1] - rad[0])
    ext = np.concatenate([2 * pts[:1] - pts[1:2], pts, 2 * pts[-1:] - pts[-2:-1]])
    out_p, out_r = [], []
    for i in range(len(pts) - 1):
        p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
        n = max(1, int(math.ceil(np.linalg.norm(p2 - p1) / step)))
        t = (np.arange(n) / n)[:, None]
        c2, c3 = 2 * p0 - 5 * p1 + 4 * p2 - p3, -p0 + 3 * p1 - 3 * p2 + p3
        seg = 0.5 * ((2 * p1) + (-p0 + p2) * t + c2 * t**2 + c3 * t**3)
        out_p.append(seg)
        out_r.append(rad[i] + (rad[i + 1] - rad[i]) * t[:, 0])
    out_p.append(pts[-1:])
    out_r.append(rad[-1:])
    return np.concatenate(out_p), np.concatenate(out_r)


@dataclass
class Deform:
    """A smooth random displacement field (mm): a sum of a few plane waves with vector amplitudes.

    Attributes:
        waves: (K, 3) wave vectors (rad/mm).
        phases: (K,) phases.
        amplitudes: (K, 3) displacement amplitude per wave (mm).
    """

    waves: np.ndarray
    phases: np.ndarray
    amplitudes: np.ndarray

    @classmethod
    def sample(cls, rng: np.random.Generator, amplitude_mm: float, wavelength_mm: tuple[float, float],
               count: int = 3) -> Deform:
        """Draw ``count`` waves with wavelengths in ``wavelength_mm`` and amplitudes up to ``amplitude_mm``."""
        directions = rng.normal(size=(count, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        k = 2 * math.pi / rng.uniform(*wavelength_mm, size=(count, 1))
        amps = rng.normal(size=(count, 3))
        largest = max(1e-6, float(np.sqrt((amps**2).sum(axis=1)).max()))
        amps *= amplitude_mm / largest * rng.uniform(0.5, 1.0, (count, 1))
        return cls(directions * k, rng.uniform(0, 2 * math.pi, size=count), amps)

    @classmethod
    def none(cls) -> Deform:
        return cls(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3)))

    @property
    def bound(self) -> float:
        """Largest displacement (mm)."""
        return float(np.abs(self.amplitudes).sum(axis=0).max()) if len(self.phases) else 0.0

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Displaced coordinates ``p + d(p)``."""
        if not len(self.phases):
            return x, y, z
        out = [x, y, z]
        for w, ph, a in zip(self.waves, self.phases, self.amplitudes):
            s = np.sin(np.float32(w[0]) * x + np.float32(w[1]) * y + np.float32(w[2]) * z + np.float32(ph))
            out = [o + np.float32(aj) * s for o, aj in zip(out, a)]
        return out[0], out[1], out[2]


@dataclass
class Ellipsoid:
    """A deformed superellipsoid: ``norm_e(R^T (p + d(p) - centre) / semi) < 1`` inside.

    Attributes:
        centre: (3,) mm.
        semi: (3,) semi-axes (mm) along the local axes.
        rot: (3, 3) columns are the local axes in patient coordinates.
        deform: displacement field applied before the test.
        exponent: 2 for an ellipsoid, larger for a boxier shape.
    """

    centre: np.ndarray
    semi: np.ndarray
    rot: np.ndarray
    deform: Deform
    exponent: float = 2.0

    def extent(self, grow: float = 1.0) -> np.ndarray:
        """World extent (3, 2) that holds the shape (scaled by ``grow``)."""
        half = np.sqrt(((self.rot * (self.semi * grow)[None, :]) ** 2).sum(axis=1))
        if self.exponent > 2:
            half = np.abs(self.rot * (self.semi * grow)[None, :]).sum(axis=1)
        half = half + self.deform.bound
        return np.stack([self.centre - half, self.centre + half], axis=1)

    def local(self, x, y, z):
        """Local normalised coordinates q (three arrays)."""
        x, y, z = self.deform(x, y, z)
        d = (x - np.float32(self.centre[0]), y - np.float32(self.centre[1]), z - np.float32(self.centre[2]))
        r = self.rot
        return tuple(
            (d[0] * np.float32(r[0, j]) + d[1] * np.float32(r[1, j]) + d[2] * np.float32(r[2, j]))
            / np.float32(self.semi[j])
            for j in range(3)
        )

    def norm(self, q) -> np.ndarray:
        if self.exponent == 2.0:
            return np.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2])
        e = np.float32(self.exponent)
        return (np.abs(q[0]) ** e + np.abs(q[1]) ** e + np.abs(q[2]) ** e) ** np.float32(1.0 / self.exponent)

    def radius(self, x, y, z):
        """(normalised radius, local coordinates); radius < 1 inside."""
        q = self.local(x, y, z)
        return self.norm(q), q


@dataclass
class Tube:
    """A tube of varying radius around a resampled centreline, painted capsule by capsule.

    Attributes:
        points: (M, 3) centreline (mm), densely sampled.
        radii: (M,) radius at each point (mm).
    """

    points: np.ndarray
    radii: np.ndarray

    @classmethod
    def through(cls, points: Sequence, radii: Sequence | float, step: float = 8.0) -> Tube:
        pts = np.asarray(points, dtype=float)
        rad = np.broadcast_to(np.asarray(radii, dtype=float), (len(pts),))
        p, r = smooth_path(pts, rad, step)
        return cls(p, np.maximum(r, 0.5))

    def extent(self, extra: float = 0.0) -> np.ndarray:
        r = float(self.radii.max()) + extra
        return np.stack([self.points.min(axis=0) - r, self.points.max(axis=0) + r], axis=1)

    def shifted(self, delta: np.ndarray) -> Tube:
        return Tube(self.points + np.asarray(delta, dtype=float), self.radii.copy())


class Canvas:
    """Tissue codes and labels on a RAS-ordered grid, written through local boxes.

    Args:
        xs, ys, zs: world coordinates (mm) of the voxel centres along x, y, z.
        structures: labelled structure name -> label value.
        roll: rotation of the patient about the z axis through ``(0, 0)`` (radians): patient coordinates are the
            world coordinates rotated by ``-roll``.
    """

    def __init__(self, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray, structures: Mapping[str, int],
                 roll: float = 0.0):
        self.axes = (np.asarray(xs, float), np.asarray(ys, float), np.asarray(zs, float))
        self.shape = (len(xs), len(ys), len(zs))
        self.tissue = np.zeros(self.shape, dtype=np.uint8)
        self.label = np.zeros(self.shape, dtype=np.int16)
        self.structures = dict(structures)
        self.cos, self.sin = math.cos(roll), math.sin(roll)
        self.spacing = tuple(float(a[1] - a[0]) if len(a) > 1 else 1.0 for a in self.axes)
        self._where_cache: dict[tuple[str, ...], np.ndarray] = {}

    # ---- geometry -------------------------------------------------------------------------------------------------
    def box(self, extent: np.ndarray, pad: float = 0.0) -> Box | None:
        """Index slices of the voxels whose centres may lie inside a patient-frame extent (3, 2); None if none."""
        ext = np.asarray(extent, dtype=float)
        (x0, x1), (y0, y1) = ext[0] - [pad, -pad], ext[1] - [pad, -pad]
        corners = np.array([[x0, y0], [x0, y1], [x1, y0], [x1, y1]])
        wx = corners[:, 0] * self.cos - corners[:, 1] * self.sin
        wy = corners[:, 0] * self.sin + corners[:, 1] * self.cos
        world = [(wx.min(), wx.max()), (wy.min(), wy.max()), (ext[2, 0] - pad, ext[2, 1] + pad)]
        return extent_to_box(self.axes, world)

    def full(self) -> Box:
        return (slice(None), slice(None), slice(None))

    def grid(self, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patient coordinates of a box: X, Y of shape (bx, by, 1), Z of shape (1, 1, bz), float32."""
        xs, ys, zs = (a[b].astype(np.float32) for a, b in zip(self.axes, box))
        wx, wy = xs[:, None, None], ys[None, :, None]
        if self.sin == 0.0:
            X = np.broadcast_to(wx, (len(xs), len(ys), 1)).astype(np.float32)
            Y = np.broadcast_to(wy, (len(xs), len(ys), 1)).astype(np.float32)
        else:
            c, s = np.float32(self.cos), np.float32(self.sin)
            X, Y = wx * c + wy * s, -wx * s + wy * c
        return X, Y, zs[None, None, :]

    def z_index(self, box: Box) -> np.ndarray:
        return self.axes[2][box[2]]

    # ---- painting -------------------------------------------------------------------------------------------------
    def where_lut(self, tissues: Sequence[str]) -> np.ndarray:
        key = tuple(tissues)
        if key not in self._where_cache:
            lut = np.zeros(256, dtype=bool)
            lut[[TISSUE_INDEX[t] for t in key]] = True
            self._where_cache[key] = lut
        return self._where_cache[key]

    def paint(
        self,
        box: Box | None,
        mask: np.ndarray,
        tissue: str | np.ndarray,
        name: str | None = None,
        where: Sequence[str] | None = None,
        where_label: Sequence[int] | None = None,
    ) -> np.ndarray | None:
        """Write a tissue (a name, or a uint8 code array the shape of the box) and a label where ``mask``.

        Args:
            box: from :meth:`box` (None: nothing to do).
            mask: boolean, broadcastable to the box.
            tissue: tissue class name, or an array of codes.
            name: structure written into the label map (0 when not labelled), ``None`` for 0, :data:`KEEP` to
                leave the label.
            where: only over voxels whose current tissue is one of these.
            where_label: only over voxels whose current label is one of these.

        Returns:
            The mask actually written (box shape), or None.
        """
        if box is None:
            return None
        sub_t = self.tissue[box]
        m = np.broadcast_to(mask, sub_t.shape)
        if where is not None:
            m = m & self.where_lut(where)[sub_t]
        if where_label is not None:
            m = m & np.isin(self.label[box], list(where_label))
        if isinstance(tissue, str):
            sub_t[m] = TISSUE_INDEX[tissue]
        else:
            sub_t[m] = np.broadcast_to(tissue, m.shape)[m]
        if name != KEEP:
            self.label[box][m] = self.structures.get(name, 0) if name else 0
        return m

    def paint_ellipsoid(self, e: Ellipsoid, tissue: str, name: str | None = None, where=None, scale: float = 1.0,
                        extra: np.ndarray | None = None) -> None:
        box = self.box(e.extent(scale))
        if box is None:
            return
        r, _ = e.radius(*self.grid(box))
        mask = r < scale
        if extra is not None:
            mask &= extra
        self.paint(box, mask, tissue, name, where)

    def paint_tube(self, tube: Tube, tissue: str, name: str | None = None, where=None, shrink: float = 0.0,
                   scale: float = 1.0) -> None:
        """Paint the union of capsules between consecutive centreline points (radius ``r * scale - shrink``)."""
        pts, rad = tube.points, np.maximum(tube.radii * scale - shrink, 0.0)
        for a, b, ra, rb in zip(pts[:-1], pts[1:], rad[:-1], rad[1:]):
            if ra <= 0.0 and rb <= 0.0:
                continue
            r = max(ra, rb)
            ext = np.stack([np.minimum(a, b) - r, np.maximum(a, b) + r], axis=1)
            box = self.box(ext)
            if box is None:
                continue
            X, Y, Z = self.grid(box)
            ab = b - a
            L2 = float(ab @ ab) or 1e-6
            t = ((X - np.float32(a[0])) * np.float32(ab[0] / L2) + (Y - np.float32(a[1])) * np.float32(ab[1] / L2)
                 + (Z - np.float32(a[2])) * np.float32(ab[2] / L2))
            np.clip(t, 0.0, 1.0, out=t)
            dx = X - np.float32(a[0]) - t * np.float32(ab[0])
            dy = Y - np.float32(a[1]) - t * np.float32(ab[1])
            dz = Z - np.float32(a[2]) - t * np.float32(ab[2])
            rr = np.float32(ra) + t * np.float32(rb - ra)
            self.paint(box, dx * dx + dy * dy + dz * dz < rr * rr, tissue, name, where)

    def paint_point(self, p: np.ndarray, radius: float, tissue: str, name: str | None = None) -> None:
        """A small sphere that always covers at least the voxel nearest to its centre (surgical clips)."""
        ext = np.stack([p - radius, p + radius], axis=1)
        box = self.box(ext)
        if box is not None:
            X, Y, Z = self.grid(box)
            self.paint(box, (X - p[0]) ** 2 + (Y - p[1]) ** 2 + (Z - p[2]) ** 2 < radius**2, tissue, name)
        wx = p[0] * self.cos - p[1] * self.sin
        wy = p[0] * self.sin + p[1] * self.cos
        idx = []
        for axis, c in zip(self.axes, (wx, wy, p[2])):
            i = int(np.argmin(np.abs(axis - c)))
            if abs(axis[i] - c) > 0.75 * (abs(axis[1] - axis[0]) if len(axis) > 1 else 1.0):
                return
            idx.append(i)
        self.tissue[tuple(idx)] = TISSUE_INDEX[tissue]
        self.label[tuple(idx)] = self.structures.get(name, 0) if name else 0

    def world_xy(self, x: float, y: float) -> tuple[float, float]:
        """World (x, y) of a patient-frame point."""
        return x * self.cos - y * self.sin, x * self.sin + y * self.cos


assert len(TISSUES) < 256
