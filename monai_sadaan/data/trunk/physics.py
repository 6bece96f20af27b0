"""CT physics of the trunk phantoms: tissue classes, their Hounsfield units per contrast phase, and image formation.

The renderer paints a tissue-class map (one small integer per voxel, :data:`TISSUES`); this module turns it into an
image: a per-tissue mean (a textbook HU value for the phase, shifted per case) plus smooth per-tissue texture,
an anisotropic Gaussian blur for the slice thickness and the reconstruction kernel (partial volume), mild streaks
from dense objects, quantum noise that is correlated (smooth kernel) or white (sharp kernel), and clipping to the
scanner's range [-1024, 3071].

With ``intensity_mode="random"`` (domain randomisation, as SynthSeg does for MRI) every tissue class gets a random
mean in [-300, 400] HU, random texture, random noise and blur: the anatomy and the label map stay the same, only the
contrasts change, so that a network trained on both learns shape and context rather than the HU table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

__all__ = [
    "PHASES",
    "INTENSITY_MODES",
    "TISSUES",
    "TISSUE_INDEX",
    "TRUNK_TISSUE_HU",
    "ImagingParameters",
    "sample_imaging",
    "form_image",
]

PHASES: tuple[str, ...] = ("non_contrast", "arterial", "portal_venous")
"""Contrast phases: no contrast, late arterial (~35 s), portal venous (~70 s)."""

INTENSITY_MODES: tuple[str, ...] = ("ct", "random")
"""``"ct"``: textbook HU per tissue and phase; ``"random"``: a random mean per tissue class (domain randomisation)."""

# name: (non-contrast, arterial, portal venous) mean HU, texture SD (HU)
TRUNK_TISSUE_HU: dict[str, tuple[tuple[float, float, float], float]] = {
    "air": ((-1000.0, -1000.0, -1000.0), 0.0),
    "gas": ((-990.0, -990.0, -990.0), 5.0),
    "lung": ((-860.0, -850.0, -845.0), 20.0),
    "fat": ((-105.0, -105.0, -105.0), 6.0),
    "visceral_fat": ((-95.0, -95.0, -95.0), 10.0),
    "muscle": ((50.0, 55.0, 60.0), 8.0),
    "diaphragm": ((50.0, 55.0, 60.0), 8.0),
    "cortical_bone": ((950.0, 950.0, 950.0), 80.0),
    "cancellous_bone": ((230.0, 235.0, 240.0), 45.0),
    "marrow": ((-30.0, -25.0, -20.0), 25.0),
    "disc": ((85.0, 90.0, 95.0), 10.0),
    "cartilage": ((120.0, 125.0, 130.0), 35.0),
    "cord": ((35.0, 40.0, 45.0), 4.0),
    "csf": ((8.0, 8.0, 8.0), 3.0),
    "arterial_blood": ((42.0, 310.0, 160.0), 6.0),
    "venous_blood": ((40.0, 80.0, 145.0), 6.0),
    "svc_blood": ((40.0, 450.0, 150.0), 25.0),
    "portal_blood": ((40.0, 120.0, 175.0), 6.0),
    "myocardium": ((45.0, 115.0, 105.0), 6.0),
    "liver": ((57.0, 72.0, 110.0), 5.0),
    "spleen": ((48.0, 120.0, 122.0), 5.0),
    "kidney_cortex": ((35.0, 185.0, 165.0), 6.0),
    "kidney_medulla": ((30.0, 70.0, 155.0), 6.0),
    "urine": ((8.0, 8.0, 9.0), 3.0),
    "pancreas": ((42.0, 115.0, 95.0), 8.0),
    "adrenal": ((30.0, 65.0, 70.0), 5.0),
    "bile": ((10.0, 10.0, 12.0), 3.0),
    "gut_wall": ((40.0, 95.0, 90.0), 6.0),
    "gut_fluid": ((14.0, 14.0, 14.0), 6.0),
    "feces": ((-40.0, -40.0, -40.0), 70.0),
    "soft_tissue": ((40.0, 70.0, 85.0), 8.0),
    "breast_gland": ((25.0, 35.0, 40.0), 20.0),
    "pad": ((-800.0, -800.0, -800.0), 20.0),
    "table": ((250.0, 250.0, 250.0), 30.0),
    "metal": ((3000.0, 3000.0, 3000.0), 0.0),
}
"""Mean HU per tissue class for the three :data:`PHASES` and the texture SD of the class (textbook values; every
case shifts the soft-tissue means by up to 12 HU and scales the contrast enhancement, as a whole and per tissue)."""

TISSUES: tuple[str, ...] = tuple(TRUNK_TISSUE_HU)
"""Tissue classes in the order of their integer code in the renderer's tissue map."""

TISSUE_INDEX: dict[str, int] = {name: i for i, name in enumerate(TISSUES)}

_CONTRAST_FREE = ("air", "gas", "lung", "fat", "visceral_fat", "cortical_bone", "metal", "pad", "table", "urine",
                  "bile", "csf", "feces")
_ORAL_CONTRAST_CLASSES = ("gut_fluid",)


@dataclass
class ImagingParameters:
    """Everything drawn about the scanner and the injection for one case.

    Attributes:
        intensity_mode: ``"ct"`` or ``"random"``.
        phase: one of :data:`PHASES`.
        means: mean HU per tissue class, shape (len(TISSUES),).
        textures: texture SD per tissue class (HU), shape (len(TISSUES),).
        texture_mm: correlation length of the organ texture (mm).
        slice_thickness: nominal slice thickness (mm).
        kernel: ``"smooth"`` or ``"sharp"``.
        psf_mm: in-plane FWHM of the reconstruction kernel's point spread (mm).
        noise_sd: standard deviation of the quantum noise on the scanner's own reconstruction grid (HU), before the
            image is averaged onto the (usually coarser) output grid.
        streaks: strength of the streaks from dense objects (HU).
        oral_contrast: positive oral contrast in the stomach and bowel.
        fatty_liver: the liver was drawn steatotic.
    """

    intensity_mode: str
    phase: str
    means: np.ndarray
    textures: np.ndarray
    texture_mm: float
    slice_thickness: float
    kernel: str
    psf_mm: float
    noise_sd: float
    streaks: float
    oral_contrast: bool = False
    fatty_liver: bool = False
    extra: dict = field(default_factory=dict)
    recon_pixel_mm: float = 0.78
    averaged_grid: bool = False

    def output_noise_sd(self, spacing: Sequence[float]) -> float:
        """Noise SD (HU) on an output grid of voxel size ``spacing`` (x, y, z mm).

        Without ``averaged_grid`` the output grid samples a fine reconstruction (as a resampling that does not
        average does), so the noise keeps its SD. With it the scanner reconstructed onto the coarser grid itself: it
        reconstructs on ``recon_pixel_mm`` pixels whose noise is correlated over about the kernel's point spread, a
        coarser output voxel averages ``(voxel / cell)`` independent cells per in-plane axis, and the SD falls by
        ``cell / voxel`` for square pixels (slices are already about as thick as they are apart).
        """
        if not self.averaged_grid:
            return float(self.noise_sd)
        cell = max(float(self.recon_pixel_mm), float(self.psf_mm))
        factor = math.sqrt(min(1.0, cell / float(spacing[0])) * min(1.0, cell / float(spacing[1])))
        return float(self.noise_sd) * factor

    def metadata(self) -> dict:
        """JSON-ready summary (phase, mode, kernel, thickness, noise)."""
        return {
            "phase": self.phase,
            "intensity_mode": self.intensity_mode,
            "kernel": self.kernel,
            "slice_thickness_mm": round(float(self.slice_thickness), 3),
            "noise_sd_hu": round(float(self.noise_sd), 2),
            "recon_pixel_mm": round(float(self.recon_pixel_mm), 3),
            "averaged_grid": bool(self.averaged_grid),
            "oral_contrast": bool(self.oral_contrast),
            "fatty_liver": bool(self.fatty_liver),
        }


def sample_imaging(
    rng: np.random.Generator,
    phase: str,
    intensity_mode: str,
    z_spacing: float,
    body_width_mm: float,
) -> ImagingParameters:
    """Draw the HU table and the scanner settings of one case.

    Args:
        rng: the case's image random stream.
        phase: one of :data:`PHASES`.
        intensity_mode: one of :data:`INTENSITY_MODES`.
        z_spacing: slice spacing of the output grid (mm); the slice thickness is at least about this.
        body_width_mm: patient width; wider patients get noisier images.

    Returns:
        The parameters.
    """
    u = rng.uniform
    p = PHASES.index(phase)
    n = len(TISSUES)
    # draws common to both modes first, so that the geometry-dependent ones stay in step
    t_lo = max(0.6, 0.9 * z_spacing)
    thickness = float(u(t_lo, max(t_lo, min(5.0, 1.6 * z_spacing)) + 1e-6))
    kernel = "sharp" if rng.random() < 0.3 else "smooth"
    psf = float(u(0.5, 0.9) if kernel == "sharp" else u(0.9, 1.6))
    size_factor = float(np.clip(body_width_mm / 340.0, 0.85, 1.3))
    noise = float(np.clip(u(8.0, 28.0) * size_factor * (1.25 if kernel == "sharp" else 1.0), 8.0, 40.0))
    streaks = float(u(0.0, 40.0))
    texture_mm = float(u(1.5, 4.0))
    recon_pixel = float(u(0.6, 0.9))  # 350-460 mm reconstruction field on 512 pixels
    averaged = bool(rng.random() < 0.5)  # reconstructed on the output grid (averaged) or resampled from a fine one
    if intensity_mode == "random":
        means = rng.uniform(-300.0, 400.0, size=n)
        textures = rng.uniform(0.0, 35.0, size=n)
        noise = float(u(0.0, 50.0))
        thickness = float(u(t_lo, max(t_lo, 2.5 * z_spacing)))
        return ImagingParameters("random", phase, means.astype(np.float32), textures.astype(np.float32), texture_mm,
                                 thickness, kernel, psf, noise, streaks, recon_pixel_mm=recon_pixel,
                                 averaged_grid=averaged)
    means = np.array([TRUNK_TISSUE_HU[t][0][0] for t in TISSUES], dtype=np.float64)
    phase_means = np.array([TRUNK_TISSUE_HU[t][0][p] for t in TISSUES], dtype=np.float64)
    enhancement = u(0.7, 1.3)  # injection rate, cardiac output, timing
    # organs also differ from one another between people and timings (perfusion, scan delay): each tissue's
    # enhancement varies around the case's
    per_tissue = rng.uniform(0.8, 1.2, size=n)
    means = means + (phase_means - means) * enhancement * per_tissue
    if phase == "arterial":  # the injected arm's vein: dense, very variable
        means[TISSUE_INDEX["svc_blood"]] = u(200.0, 900.0)
    for i, name in enumerate(TISSUES):
        if name not in _CONTRAST_FREE:
            means[i] += u(-12.0, 12.0)
    means[TISSUE_INDEX["fat"]] += u(-15.0, 10.0)
    means[TISSUE_INDEX["visceral_fat"]] = means[TISSUE_INDEX["fat"]] + u(0.0, 20.0)
    means[TISSUE_INDEX["cortical_bone"]] = u(700.0, 1200.0)
    means[TISSUE_INDEX["cancellous_bone"]] = u(150.0, 300.0)
    means[TISSUE_INDEX["table"]] = u(100.0, 400.0)
    fatty_liver = bool(rng.random() < 0.12)
    if fatty_liver:
        means[TISSUE_INDEX["liver"]] -= u(30.0, 60.0)
    oral = bool(rng.random() < 0.15)
    if oral:
        for name in _ORAL_CONTRAST_CLASSES:
            means[TISSUE_INDEX[name]] = u(150.0, 400.0)
    if rng.random() < 0.2:  # calcified costal cartilage in older patients
        means[TISSUE_INDEX["cartilage"]] = u(200.0, 450.0)
    textures = np.array([TRUNK_TISSUE_HU[t][1] for t in TISSUES], dtype=np.float64) * u(0.7, 1.4)
    return ImagingParameters("ct", phase, means.astype(np.float32), textures.astype(np.float32), texture_mm,
                             thickness, kernel, psf, noise, streaks, oral_contrast=oral, fatty_liver=fatty_liver,
                             recon_pixel_mm=recon_pixel, averaged_grid=averaged)


def _unit_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: tuple[float, ...]) -> np.ndarray:
    """Gaussian-filtered white noise normalised to unit SD (float32)."""
    field_ = rng.standard_normal(shape, dtype=np.float32)
    if max(sigma) > 0.05:
        field_ = ndimage.gaussian_filter(field_, sigma=sigma, mode="wrap", truncate=3.0)
    sd = float(field_.std())
    field_ *= np.float32(1.0 / max(sd, 1e-6))
    return field_


def form_image(
    tissue: np.ndarray,
    spacing: tuple[float, float, float],
    params: ImagingParameters,
    rng: np.random.Generator,
    streak_sources: list[tuple[float, float, float, float]] | None = None,
    axes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    special: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Turn a tissue-class map (RAS voxel order) into a CT image.

    Args:
        tissue: uint8 tissue codes (:data:`TISSUES`), shape (X, Y, Z).
        spacing: voxel size along x, y, z (mm).
        params: the case's :class:`ImagingParameters`.
        rng: the case's image random stream.
        streak_sources: dense objects that cast streaks, as (x, y, z_low, z_high) world mm (RAS); x, y in the grid's
            world frame.
        axes: world coordinates (mm) of the voxel centres along x, y, z (needed with ``streak_sources``).
        special: extra HU maps added after the texture (e.g. the spleen's arterial pattern), shape (X, Y, Z) each.

    Returns:
        float32 HU image, shape (X, Y, Z), clipped to [-1024, 3071].
    """
    sp = np.asarray(spacing, dtype=float)
    image = params.means[tissue]
    tex_sigma = tuple(float(params.texture_mm / s) for s in sp)
    texture = _unit_noise(rng, tissue.shape, tex_sigma)
    texture *= params.textures[tissue]
    image += texture
    del texture
    if special:
        for extra in special.values():
            image += extra
    # partial volume: slice profile along z, kernel point spread in-plane, and the voxel's own footprint
    sigma_mm = np.array([params.psf_mm, params.psf_mm, params.slice_thickness]) / 2.355
    sigma_vox = np.sqrt((sigma_mm / sp) ** 2 + 0.35**2)
    image = ndimage.gaussian_filter(image, sigma=sigma_vox.tolist(), mode="nearest", truncate=3.0)
    if streak_sources and axes is not None and params.streaks > 0:
        _add_streaks(image, axes, streak_sources, params.streaks, rng)
    # quantum noise: in-plane correlated (smooth kernel) or nearly white (sharp kernel), thin correlation along z,
    # averaged down to the output voxel's size
    corr_mm = 1.2 * params.psf_mm if params.kernel == "smooth" else 0.45 * params.psf_mm
    noise_sigma = (corr_mm / sp[0], corr_mm / sp[1], 0.25 * params.slice_thickness / sp[2])
    noise = _unit_noise(rng, tissue.shape, tuple(float(min(s, 3.0)) for s in noise_sigma))
    image += noise * np.float32(params.output_noise_sd(sp))
    np.clip(image, -1024.0, 3071.0, out=image)
    return image.astype(np.float32, copy=False)


def _add_streaks(
    image: np.ndarray,
    axes: tuple[np.ndarray, np.ndarray, np.ndarray],
    sources: list[tuple[float, float, float, float]],
    strength: float,
    rng: np.random.Generator,
) -> None:
    """Alternating dark and bright thin lines through each dense source, in its slices (beam hardening)."""
    xs, ys, zs = (a.astype(np.float32) for a in axes)
    for sx, sy, z0, z1 in sources:
        k0, k1 = np.searchsorted(zs, z0), np.searchsorted(zs, z1, "right")
        if k1 <= k0:
            continue
        dx, dy = xs[:, None] - np.float32(sx), ys[None, :] - np.float32(sy)
        r = np.sqrt(dx * dx + dy * dy) + np.float32(1.0)
        pattern = np.zeros((len(xs), len(ys)), dtype=np.float32)
        for _ in range(int(rng.integers(3, 7))):
            angle = rng.uniform(0.0, math.pi)
            d = np.abs(dx * np.float32(math.sin(angle)) - dy * np.float32(math.cos(angle)))
            sign = np.float32(-1.0 if rng.random() < 0.6 else 1.0)
            pattern += sign * np.exp(-((d / np.float32(1.5)) ** 2)) * np.float32(40.0) / np.sqrt(r / 10.0)
        image[:, :, k0:k1] += (np.float32(strength / 40.0) * pattern)[:, :, None]
