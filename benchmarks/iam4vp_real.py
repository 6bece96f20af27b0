"""IAM4VP against the baselines a forecaster would pick, on held-out REAL satellite and radar frames, per lead time.

Data (``../shared/data``, read through ``seq_models.data.real_frames``):

- Satellite: SEVIRI IR_016 over the UK, 2020-04-01 12:00-14:00 UTC, values / 1023 in ``[0, 1]``, the no-data
  block NaN. Frames up to ``--satellite_split`` (13:00) are the development part; a window is held out when all
  its targets lie after it. Two sets: the 15-minute store (one window: history to 13:00, targets 13:15-14:00) and
  the 5-minute store read at 15-minute steps (origins 12:50, 12:55, 13:00; its frames at :00/:15/:30/:45 are the
  15-minute store's). Leads 15, 30, 45, 60 min.
- Radar: one event held out (``--radar_heldout``, FMI 2016-09-28 by default; the other, KNMI 2010-08-26, is the
  one to train on), rain rate through pysteps' importers scaled to ``[0, 1]`` linearly in dBR (0 = no rain or
  under 0.1 mm/h, 1 = 100 mm/h). Origins every ``--radar_stride`` frames from the 12th frame on. Leads 5-30 min.

Methods: persistence; the project's optical flow (OpenCV Farneback); pysteps' extrapolation nowcast
(Lucas-Kanade motion from the last 3 frames + semi-Lagrangian advection); pysteps' S-PROG on radar only (same
motion field); IAM4VP when ``--iam4vp_checkpoint`` gives weights (tiled over the full frames). Scores: MAE, MSE
and SSIM of ``seq_models.metrics`` over the pixels every method covers and the truth has (pysteps leaves NaN where
the advected source is outside the grid), pooled over windows. A PNG strip per lead (history, each method,
truth) for one window of each set.

    OMP_NUM_THREADS=1 flock /tmp/heavy.lock .venv/bin/python benchmarks/iam4vp_real.py \
        --markdown docs/benchmarks/iam4vp_real.md --figures docs/figures/iam4vp_real

With weights: ``--iam4vp_checkpoint satellite=PATH --iam4vp_checkpoint radar=PATH`` (a plain PATH is used for
every set whose channel count it fits); the architecture is read from the state dict (``--iam4vp_tile`` sets the
tile when it is not a multiple of the encoder stride). Exit status 0 when IAM4VP was scored and has the lowest MAE
at every lead of every set, 1 otherwise (always 1 without weights).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from monai_glue import atomic_open
from seq_models.baselines import (
    NOWCAST_PRIOR_METHODS,
    lk_motion,
    optical_flow_forecast,
    persistence_forecast,
    pysteps_extrapolation_forecast,
    sprog_forecast,
)
from seq_models.data.real_frames import RainRateScaling, open_radar_frames, open_seviri_frames
from seq_models.metrics import per_sample_forecast_metrics

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PERSISTENCE, FLOW, EXTRAP, SPROG, IAM4VP_NAME = (
    "persistence",
    "optical flow (Farneback)",
    "pysteps extrapolation (LK + SL)",
    "pysteps S-PROG",
    "IAM4VP",
)


@dataclass
class Case:
    """One scored set: frames ``(N, C, H, W)``, window origins (frame indices), the step between used frames."""

    key: str
    title: str
    kind: str  # "satellite" or "radar"
    frames: np.ndarray
    times: np.ndarray
    step: int  # frames between the used frames (3: 15-minute steps from the 5-minute store)
    minutes: int  # minutes per used step
    leads: int
    origins: list[int]
    note: str = ""
    figure_origin: int | None = None
    sums: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    scored_fraction: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)

    def history(self, origin: int) -> np.ndarray:
        return self.frames[origin % self.step : origin + 1 : self.step]

    def truth(self, origin: int) -> np.ndarray:
        return self.frames[origin + self.step : origin + self.step * self.leads + 1 : self.step]

    def stamp(self, index: int) -> str:
        return str(self.times[index])[:16].replace("T", " ")


def satellite_cases(args: argparse.Namespace) -> list[Case]:
    split = np.datetime64(f"{args.satellite_date}T{args.satellite_split}")
    cases = []
    for key, store, step in (("sat15", "ir016_15min.zarr", 1), ("sat5", "ir016_5min.zarr", 3)):
        da = open_seviri_frames(args.satellite_dir / store, channels=args.satellite_channels)
        times = da.time.values
        frames = da.values
        leads = 4
        minutes = int(round((times[step] - times[0]) / np.timedelta64(1, "m")))
        origins = [
            o for o in range(len(times))
            if o + step * leads < len(times) and times[o + step] > split and o - step * 3 >= 0
        ]
        title = (
            "Satellite, SEVIRI IR_016 15-minute store" if step == 1
            else "Satellite, SEVIRI IR_016 5-minute store read at 15-minute steps"
        )
        cases.append(
            Case(key, title, "satellite", frames, times, step, minutes, leads, origins,
                 note=f"development frames up to {args.satellite_split} UTC, targets after it",
                 figure_origin=origins[-1] if step == 1 else None)
        )
    return cases


def radar_case(args: argparse.Namespace) -> Case:
    folder = {"fmi": "fmi_20160928", "knmi": "knmi_20100826"}[args.radar_heldout]
    other = {"fmi": "KNMI 2010-08-26", "knmi": "FMI 2016-09-28"}[args.radar_heldout]
    da = open_radar_frames(args.radar_dir / folder)
    times, frames, leads = da.time.values, da.values, 6
    origins = list(range(args.radar_first_origin, len(times) - leads, args.radar_stride))
    title = f"Radar, {da.attrs['institution'].split(' - ')[0]} {str(times[0])[:10]} (held-out event)"
    return Case("radar", title, "radar", frames, times, 1, 5, leads, origins,
                note=f"the other event ({other}) is the one to train on", figure_origin=origins[len(origins) // 2])


# ----------------------------------------------------------------------------------------------- IAM4VP weights


def iam4vp_from_checkpoint(path: Path, tile: tuple[int, int] | None = None) -> torch.nn.Module:
    """An ``IAM4VP`` built from what its state dict says (history, channels, latent, N_S, N_T, time dim, tile,
    nowcast-prior frames)."""
    from monai_glue import load_checkpoint, load_state_dict_checked
    from seq_models.networks.iam4vp import IAM4VP

    state = load_checkpoint(path)
    for key in ("model", "network", "state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    t_in, latent, h_lat, w_lat = state["mask_token"].shape
    channels = state["enc.enc.0.conv.weight"].shape[1]
    n_s = len({k.split(".")[2] for k in state if k.startswith("enc.enc.")})
    n_t = len({k.split(".")[2] for k in state if k.startswith("hid.st_block.")})
    time_dim = state["hid.st_block.0.mlp.1.weight"].shape[1]
    stride = 2 ** (n_s // 2)
    h, w = tile if tile else (h_lat * stride, w_lat * stride)
    prior_steps = int(state["prior_steps"]) if "prior_steps" in state else 0
    method = NOWCAST_PRIOR_METHODS[int(state["prior_method"]) if "prior_method" in state else 0]
    model = IAM4VP((int(t_in), int(channels), int(h), int(w)), int(latent), n_s, n_t, int(time_dim), prior_steps, method)
    load_state_dict_checked(model, state, source=str(path))
    return model.eval()


def parse_checkpoints(values: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for v in values or []:
        kind, sep, path = v.partition("=")
        if sep and kind in ("satellite", "radar"):
            out[kind] = Path(path)
        else:
            out.setdefault("satellite", Path(v))
            out.setdefault("radar", Path(v))
    return out


# ---------------------------------------------------------------------------------------------------- scoring


def forecasts_for(case: Case, origin: int, model: torch.nn.Module | None, tiled) -> dict[str, np.ndarray]:
    history = case.history(origin)
    k = case.leads
    out: dict[str, np.ndarray] = {}

    def timed(name: str, fn):
        start = time.perf_counter()
        out[name] = np.asarray(fn(), dtype=np.float32)
        case.seconds[name] = case.seconds.get(name, 0.0) + time.perf_counter() - start

    timed(PERSISTENCE, lambda: persistence_forecast(history, k))
    timed(FLOW, lambda: optical_flow_forecast(history, k))
    start = time.perf_counter()
    field = np.nanmean(history[-3:], axis=1) if history.shape[1] > 1 else history[-3:, 0]
    motion = lk_motion(field)
    lk_s = time.perf_counter() - start
    timed(EXTRAP, lambda: pysteps_extrapolation_forecast(history, k, motion=motion))
    case.seconds[EXTRAP] += lk_s
    if case.kind == "radar":
        timed(SPROG, lambda: sprog_forecast(history, k, scaling=RainRateScaling(), motion=motion))
        case.seconds[SPROG] += lk_s
    if model is not None:
        t_in, most = model.num_history_steps, model.num_prior_steps or model.shape_in[0]
        if history.shape[0] < t_in:
            case.skipped[IAM4VP_NAME] = f"needs {t_in} history frames, the windows have {history.shape[0]}"
        elif k > most:
            case.skipped[IAM4VP_NAME] = f"forecasts at most {most} steps, the set needs {k}"
        else:
            with torch.no_grad():
                timed(IAM4VP_NAME, lambda: tiled(torch.from_numpy(history[None].copy()), model, steps=k)[0].numpy())
    return out


def score(case: Case, model: torch.nn.Module | None, tiled) -> dict[str, dict[str, np.ndarray]]:
    """Pooled MAE / MSE / SSIM per lead ``{method: {metric: (K,)}}`` over the pixels every method covers."""
    sums: dict[str, dict[str, np.ndarray]] = {}
    counts = np.zeros(case.leads)
    possible = np.zeros(case.leads)
    for origin in case.origins:
        preds = forecasts_for(case, origin, model, tiled)
        truth = case.truth(origin).copy()
        possible += np.isfinite(truth).sum(axis=(1, 2, 3))
        for p in preds.values():
            truth[~np.isfinite(p)] = np.nan
        target = torch.from_numpy(truth[None])
        for name, p in preds.items():
            per = per_sample_forecast_metrics(torch.from_numpy(p[None]), target)
            n = per["count"][0].sum(-1).numpy()  # (K,) pixels over channels
            acc = sums.setdefault(name, {m: np.zeros(case.leads) for m in ("mae", "mse", "ssim")})
            for m in acc:
                acc[m] += np.nansum((per[m][0] * per["count"][0]).numpy(), axis=-1)
        counts += n
        print(f"  {case.key} origin {case.stamp(origin)}: {len(preds)} methods", flush=True)
    case.scored_fraction = list(counts / np.maximum(possible, 1))
    return {name: {m: v / np.maximum(counts, 1) for m, v in acc.items()} for name, acc in sums.items()}


# ----------------------------------------------------------------------------------------------------- figures


def strip(case: Case, model, tiled, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    origin = case.figure_origin
    preds = forecasts_for(case, origin, model, tiled)
    history, truth = case.history(origin), case.truth(origin)
    shown = history[-3:]
    every = max(1, max(case.frames.shape[-2:]) // 400)  # display resolution only
    cmap = plt.get_cmap("viridis" if case.kind == "radar" else "gray").copy()
    cmap.set_bad("#d0a0a0")
    paths = []
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(case.leads):
        panels = [(f"history {case.stamp(origin - case.step * (len(shown) - 1 - i))}", shown[i, 0]) for i in range(len(shown))]
        panels += [(name, p[k, 0]) for name, p in preds.items()]
        panels.append((f"truth {case.stamp(origin + case.step * (k + 1))}", truth[k, 0]))
        h, w = case.frames.shape[-2:]
        cols = 4
        rows = -(-len(panels) // cols)
        width = 2.8 if w >= h else 2.0
        fig, axes = plt.subplots(rows, cols, figsize=(cols * width, rows * width * h / w + 0.5), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, (label, img) in zip(axes.ravel(), panels):
            ax.imshow(img[::every, ::every], cmap=cmap, vmin=0, vmax=1 if case.kind == "satellite" else 0.8, interpolation="nearest")
            ax.set_title(label, fontsize=7)
        fig.suptitle(
            f"REAL DATA - {case.title}\nlead {case.minutes * (k + 1)} min from {case.stamp(origin)} UTC "
            f"({'rain rate, [0, 1] = dBR scale, 0 no rain' if case.kind == 'radar' else 'IR_016 / 1023'}; pink: no data)",
            fontsize=7,
        )
        fig.tight_layout()
        path = folder / f"{case.key}_lead{case.minutes * (k + 1):02d}min.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        from PIL import Image  # a 256-colour palette keeps the committed strips small

        with Image.open(path) as im:
            small = im.convert("RGB").quantize(colors=256)
        small.save(path, optimize=True)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------------- report


def table(case: Case, scores: dict, with_model: bool) -> tuple[list[str], bool]:
    names = [n for n in (PERSISTENCE, FLOW, EXTRAP, SPROG) if n in scores]
    cols = names + ([IAM4VP_NAME] if with_model else [])
    ok = IAM4VP_NAME in scores
    lines = [
        f"### {case.title}",
        "",
        f"Real data. {len(case.origins)} held-out window(s), origins "
        f"{', '.join(case.stamp(o)[11:] for o in case.origins)} UTC on {case.stamp(case.origins[0])[:10]}; "
        f"{case.note}. Frames {case.frames.shape[-2]} x {case.frames.shape[-1]}, steps of {case.minutes} min; "
        f"pixels scored per lead (share of the truth's valid pixels that every method covers): "
        + ", ".join(f"{100 * f:.0f} %" for f in case.scored_fraction) + ".",
        "",
        "| lead | " + " | ".join(f"{n} MAE" for n in cols) + " | best baseline | IAM4VP / best baseline (MAE) |",
        "|---" * (len(cols) + 3) + "|",
    ]
    for k in range(case.leads):
        mae = {n: scores[n]["mae"][k] for n in names}
        best = min(mae, key=mae.get)
        cells = [f"{mae[n]:.4f}" for n in names]
        if with_model:
            if IAM4VP_NAME in scores:
                m = scores[IAM4VP_NAME]["mae"][k]
                cells.append(f"{m:.4f}")
                ratio = f"{m / mae[best]:.3f} ({'better' if m < mae[best] else 'WORSE'}, gap {m - mae[best]:+.4f})"
                ok &= m < mae[best]
            else:
                cells.append("not scored")
                ratio = f"not scored: {case.skipped.get(IAM4VP_NAME, '')}"
        else:
            ratio = "IAM4VP not yet trained on real data: no score"
        lines.append(f"| {case.minutes * (k + 1)} min | " + " | ".join(cells) + f" | {best} | {ratio} |")
    lines += ["", "| lead | " + " | ".join(f"{n} MSE" for n in scores) + " | " + " | ".join(f"{n} SSIM" for n in scores) + " |",
              "|---" * (2 * len(scores) + 1) + "|"]
    for k in range(case.leads):
        lines.append(
            f"| {case.minutes * (k + 1)} min | " + " | ".join(f"{scores[n]['mse'][k]:.5f}" for n in scores) + " | "
            + " | ".join(f"{scores[n]['ssim'][k]:.3f}" for n in scores) + " |"
        )
    secs = ", ".join(f"{n} {s / max(1, len(case.origins)):.1f} s" for n, s in case.seconds.items())
    lines += ["", f"Seconds per window (CPU): {secs} (pysteps times include the shared LK motion estimate).", ""]
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--satellite_dir", type=Path, default=SHARED / "satellite" / "seviri_ir016_uk_20200401")
    parser.add_argument("--satellite_date", default="2020-04-01")
    parser.add_argument("--satellite_split", default="13:00", help="UTC time: development frames up to it, targets after it held out")
    parser.add_argument("--satellite_channels", nargs="+", default=["IR_016"])
    parser.add_argument("--radar_dir", type=Path, default=SHARED / "radar")
    parser.add_argument("--radar_heldout", choices=("fmi", "knmi"), default="fmi")
    parser.add_argument("--radar_first_origin", type=int, default=11, help="first origin frame (12 frames of history)")
    parser.add_argument("--radar_stride", type=int, default=2, help="frames between radar origins")
    parser.add_argument("--iam4vp_checkpoint", action="append", default=[], help="satellite=PATH, radar=PATH or PATH")
    parser.add_argument("--iam4vp_tile", default=None, help="H,W of the model's tile (default: from the state dict)")
    parser.add_argument("--only", choices=("satellite", "radar"), default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--figures", type=Path, default=None, help="folder for the PNG strips")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    wall = time.perf_counter()

    from seq_models.inferers import NowcastPriorForecaster, TiledForecaster

    tiled = NowcastPriorForecaster(TiledForecaster(overlap=0.25))  # a model without a prior: the tiled forecast
    tile = tuple(int(v) for v in args.iam4vp_tile.split(",")) if args.iam4vp_tile else None
    checkpoints = parse_checkpoints(args.iam4vp_checkpoint)
    models = {kind: iam4vp_from_checkpoint(p, tile) for kind, p in checkpoints.items() if p.is_file()}
    missing = {kind: p for kind, p in checkpoints.items() if not p.is_file()}
    cases = []
    if args.only in (None, "satellite"):
        cases += satellite_cases(args)
    if args.only in (None, "radar"):
        cases.append(radar_case(args))

    sections, all_ok, figures = [], bool(models), []
    for case in cases:
        model = models.get(case.kind)
        if model is not None and model.shape_in[1] != case.frames.shape[1]:
            case.skipped[IAM4VP_NAME] = f"the weights take {model.shape_in[1]} channels, the frames have {case.frames.shape[1]}"
            model = None
        print(f"{case.title}: {len(case.origins)} windows", flush=True)
        scores = score(case, model, tiled)
        lines, ok = table(case, scores, with_model=case.kind in models)
        sections += lines
        all_ok &= ok and case.kind in models
        if args.figures and case.figure_origin is not None:
            figures += strip(case, model, tiled, args.figures)

    load_end = os.getloadavg()
    status = []
    for kind in ("satellite", "radar"):
        if kind in models:
            prior = models[kind].num_prior_steps
            nowcast = {"farneback": "optical-flow", "sprog": "S-PROG"}[models[kind].prior_method_name]
            what = f"; the last {prior} input frames are the {nowcast} nowcast it corrects" if prior else ""
            status.append(f"{kind}: weights {checkpoints[kind]} (IAM4VP {models[kind].shape_in}{what})")
        elif kind in missing:
            status.append(f"{kind}: weights {missing[kind]} not found, so IAM4VP is not scored")
        else:
            status.append(f"{kind}: IAM4VP is not yet trained on real data (no weights given), so it is not scored")
    head = [
        f"IAM4VP status: {'; '.join(status)}.",
        "",
        f"IAM4VP has the lowest MAE at every lead of every set: {'yes' if all_ok else 'NO' if models else 'not measured (no weights)'}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} on {args.threads} thread(s); "
        f"load average (1/5/15 min) {' / '.join(f'{v:.2f}' for v in load_start)} at the start and "
        f"{' / '.join(f'{v:.2f}' for v in load_end)} at the end; {time.perf_counter() - wall:.0f} s in all.",
        "",
    ]
    text = "\n".join(head + sections)
    print(text)
    if figures:
        print("figures:", *[str(p) for p in figures], sep="\n  ")
    if args.markdown:
        omp = os.environ.get("OMP_NUM_THREADS")  # the environment this run had, not the one the docs advise
        command = (f"OMP_NUM_THREADS={omp} " if omp else "") + "flock /tmp/heavy.lock .venv/bin/python "
        command += "benchmarks/iam4vp_real.py " + " ".join(sys.argv[1:] if argv is None else argv)
        with atomic_open(args.markdown) as f:
            f.write(MARKDOWN_HEAD.format(command=command) + text + MARKDOWN_TAIL)
    return 0 if all_ok else 1


MARKDOWN_HEAD = """# IAM4VP on real satellite and radar frames, against persistence, optical flow and pysteps

Every number and figure on this page is from **real data** (`../shared/data`, see its SOURCE.md files): SEVIRI
IR_016 over the UK on 2020-04-01 and two radar rain events (KNMI 2010-08-26, FMI 2016-09-28). Made by:

```
{command}
```

How it is scored (see `benchmarks/iam4vp_real.py`):

- Frames come from `seq_models.data.real_frames`: satellite values / 1023 (the source's rescaling), the fixed
  no-data block and drop-outs NaN, north up; radar rain rate from pysteps' importers (KNMI 5-min accumulation x 12,
  FMI dBZ through Z = 223 R^1.53), scaled linearly in dBR: 0 = no rain (under 0.1 mm/h), 1/3 = 1 mm/h,
  2/3 = 10 mm/h, 1 = 100 mm/h. MAE and MSE are in these [0, 1] units (radar: 0.033 = 1 dB).
- Satellite: frames up to 13:00 UTC are the development part; a window is scored when all its targets are later.
  The 15-minute store has one such window; the 5-minute store read at 15-minute steps has three (origins 12:50,
  12:55, 13:00; the 13:00 window is the 15-minute store's, as the 15-minute store is every third 5-minute frame).
- Radar: the held-out event is scored; the other is the one to train on. Leads 5-30 min.
- Every method is scored on the same pixels: those the truth has and every forecast covers. pysteps' advection
  leaves NaN where the source of a pixel is outside the grid (inflow edges), persistence keeps the last frame's
  NaN; the share of pixels scored is given per lead.
- pysteps extrapolation and S-PROG use one Lucas-Kanade motion field per window (pysteps' LK on the last three
  frames, NaN masked), so they differ only in the nowcast. S-PROG (AR(2) cascade, 6 levels, pysteps' defaults)
  works on pysteps' dBR field with the 0.1 mm/h no-rain threshold. It is not run on the satellite frames:
  reflectance has no rain/no-rain threshold and no log-normal intensities, which S-PROG's conditional
  statistics and scale-wise decay assume.
- A lower MAE favours smooth forecasts: S-PROG's scale-dependent smoothing lowers MAE and MSE at longer leads
  without making the field more realistic; SSIM is given beside them.

"""

MARKDOWN_TAIL = """
PNG strips (one window per set, one file per lead: the last three history frames, each method, the truth) are in
`docs/figures/iam4vp_real/`; each says REAL DATA in its title.
"""


if __name__ == "__main__":
    sys.exit(main())
