"""Synthetic cloud fields for tests and demos: advected, growing and decaying clouds seen in 11 correlated channels.

Real satellite archives cannot be downloaded here, so this generator stands in for them. Each cloud is an
anisotropic Gaussian blob with a life cycle (it grows, holds and decays), carried by a slowly turning domain wind
plus its own drift. New clouds are born through the run so the scene stays populated. The clouds' optical
thickness ``tau`` in ``[0, 1]`` is turned into 11 channels in the SEVIRI order: infrared window channels get colder
(lower) under cloud, visible channels brighter, water-vapour channels follow a smoothed, damped copy; each channel
has its own smooth background and a little noise, so channels are strongly but not perfectly correlated.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["SEVIRI_CHANNELS", "generate_cloud_frames", "generate_cloud_dataset", "main"]

SEVIRI_CHANNELS: tuple[str, ...] = (
    "IR_016", "IR_039", "IR_087", "IR_097", "IR_108", "IR_120", "IR_134", "VIS006", "VIS008", "WV_062", "WV_073",
)

# per channel: (background level, response to cloud thickness). Negative: colder/darker under cloud.
_RESPONSE = {
    "IR_016": (0.25, 0.55), "IR_039": (0.70, -0.45), "IR_087": (0.75, -0.60), "IR_097": (0.60, -0.40),
    "IR_108": (0.80, -0.65), "IR_120": (0.78, -0.63), "IR_134": (0.65, -0.45), "VIS006": (0.15, 0.75),
    "VIS008": (0.18, 0.72), "WV_062": (0.45, -0.25), "WV_073": (0.55, -0.35),
}


def _smooth_noise(rng: np.random.Generator, height: int, width: int, scale: float) -> np.ndarray:
    """Smooth random field in ``[-1, 1]`` from a few low-frequency cosines."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    field = np.zeros((height, width), np.float32)
    for _ in range(4):
        ky, kx = rng.uniform(0.5, 2.5, 2) * 2 * np.pi / (scale * max(height, width))
        phase = rng.uniform(0, 2 * np.pi)
        field += np.cos(ky * yy + kx * xx + phase).astype(np.float32)
    return field / 4


def generate_cloud_frames(
    num_steps: int,
    height: int = 64,
    width: int = 64,
    num_channels: int = 11,
    clouds_per_step: float = 0.6,
    wind: tuple[float, float] = (1.0, 1.6),
    lifetime: tuple[int, int] = (8, 24),
    missing_fraction: float = 0.0,
    noise: float = 0.01,
    seed: int = 0,
) -> np.ndarray:
    """Generate frames ``(num_steps, num_channels, height, width)``, float32, values in ``[0, 1]``.

    Args:
        num_steps: frames (15-minute steps in spirit).
        height, width: frame size in pixels.
        num_channels: 1 to 11; the first ``num_channels`` SEVIRI channels.
        clouds_per_step: mean number of clouds born per step (Poisson).
        wind: mean domain wind ``(dy, dx)`` in pixels per step; it turns slowly over the run.
        lifetime: range of cloud lifetimes in steps (grow over the first third, decay over the last third).
        missing_fraction: probability that a scan line (row) of a frame is missing (NaN in all channels).
        noise: standard deviation of per-pixel noise.
        seed: random seed; the same seed gives the same frames.

    Returns:
        ``np.ndarray`` ``(num_steps, num_channels, height, width)``.
    """
    if not 1 <= num_channels <= len(SEVIRI_CHANNELS):
        raise ValueError(f"expected 1 to {len(SEVIRI_CHANNELS)} channels, got {num_channels}")
    if num_steps < 1 or height < 4 or width < 4:
        raise ValueError(f"expected num_steps >= 1 and frames of at least 4x4, got {num_steps} steps of {height}x{width}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    size = float(min(height, width))

    # clouds alive at the start plus births over the run: birth step, lifetime, position, drift, shape, peak
    n0 = max(1, int(round(clouds_per_step * lifetime[1] / 2)))
    births = np.concatenate([rng.integers(-lifetime[1], 0, n0), np.repeat(np.arange(num_steps), rng.poisson(clouds_per_step, num_steps))])
    n = len(births)
    life = rng.integers(lifetime[0], lifetime[1] + 1, n)
    pos = np.stack([rng.uniform(-0.1, 1.1, n) * height, rng.uniform(-0.1, 1.1, n) * width], 1)
    drift = rng.normal(0.0, 0.25, (n, 2))
    sigma = np.stack([rng.uniform(0.05, 0.14, n), rng.uniform(0.05, 0.14, n)], 1) * size
    peak = rng.uniform(0.5, 1.0, n)

    base_wind = np.asarray(wind, np.float64)
    turn = rng.uniform(-0.01, 0.01)
    backgrounds = [_smooth_noise(rng, height, width, 1.0) for _ in range(num_channels)]
    frames = np.empty((num_steps, num_channels, height, width), np.float32)
    # positions at step 0 of clouds born earlier: advance them from birth
    for step in range(num_steps):
        angle = turn * step
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        w = rot @ base_wind
        age = step - births
        alive = (age >= 0) & (age < life)
        tau_sum = np.zeros((height, width), np.float32)
        for i in np.nonzero(alive)[0]:
            phase = age[i] / life[i]
            amp = peak[i] * np.clip(min(3 * phase, 3 * (1 - phase), 1.0), 0.0, 1.0)
            cy, cx = pos[i] + (w + drift[i]) * age[i]
            grow = 0.7 + 0.6 * min(phase, 0.5)
            dy, dx = (yy - cy) / (sigma[i, 0] * grow), (xx - cx) / (sigma[i, 1] * grow)
            tau_sum += np.float32(amp) * np.exp(-0.5 * (dy * dy + dx * dx)).astype(np.float32)
        tau = 1.0 - np.exp(-2.0 * tau_sum)
        tau_smooth = 0.5 * tau + 0.5 * tau.mean()
        for c, name in enumerate(SEVIRI_CHANNELS[:num_channels]):
            level, gain = _RESPONSE[name]
            source = tau_smooth if name.startswith("WV") else tau
            value = level + 0.08 * backgrounds[c] + gain * source + rng.normal(0.0, noise, (height, width))
            frames[step, c] = np.clip(value, 0.0, 1.0)
        if missing_fraction > 0:
            rows = rng.random(height) < missing_fraction
            frames[step, :, rows, :] = np.nan
    return frames


def generate_cloud_dataset(num_steps: int, height: int = 64, width: int = 64, num_channels: int = 11, **kwargs) -> xr.DataArray:
    """:func:`generate_cloud_frames` as an ``xarray.DataArray`` named ``"data"`` with dims
    ``(time, channel, y, x)``, 15-minute time stamps and SEVIRI channel names."""
    frames = generate_cloud_frames(num_steps, height, width, num_channels, **kwargs)
    time = np.datetime64("2024-06-01T00:00") + np.arange(num_steps) * np.timedelta64(15, "m")
    return xr.DataArray(
        frames,
        dims=("time", "channel", "y", "x"),
        coords={"time": time, "channel": list(SEVIRI_CHANNELS[:num_channels]), "y": np.arange(height), "x": np.arange(width)},
        name="data",
        attrs={"description": "synthetic advected, growing and decaying clouds", "units": "scaled to [0, 1]"},
    )


def main(argv: list[str] | None = None) -> None:
    """Write a synthetic frame sequence: ``python -m seq_models.data.cloud_generator --output clouds.zarr``."""
    import argparse

    from .satellite import write_frames

    parser = argparse.ArgumentParser(description="Synthetic cloud frames (time, channel, y, x) as Zarr or NetCDF.")
    parser.add_argument("--output", required=True, help="*.zarr or *.nc")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--channels", type=int, default=11)
    parser.add_argument("--missing_fraction", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    da = generate_cloud_dataset(
        args.steps, args.height, args.width, args.channels, missing_fraction=args.missing_fraction, seed=args.seed
    )
    print(write_frames(da, args.output))


if __name__ == "__main__":
    main()
