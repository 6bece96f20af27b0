"""Train the plain MONAI UNet baseline of ``benchmarks/sadaan_real_ct.py`` on SADAAn's training data.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/train_plain_unet.py --datalist DATA/dataset.json \
        --output runs/plain_unet/model.pt [--epochs 40] [--max_minutes 60] [--resume] [--bundle_root DIR]
        [--train_config configs/train.json ...] [--channels 16 32 64 128 256] [--batch_size 2] [--lr 1e-3]

A ``monai.networks.nets.UNet`` (3-D, 6 output classes: background and SADAAn's five structures, strides 2,
``num_res_units`` 2) learns with MONAI's ``SupervisedTrainer``, Dice + cross-entropy (``DiceCELoss``, softmax,
one-hot labels) and AdamW, on the ``training`` split of a decathlon-style datalist: the same file SADAAn's
training reads (``ensure_phantom_datalist`` writes one; ``--datalist`` of ``configs/train.json`` otherwise).

The preprocessing is the bundle's own, read from its training configuration (``--train_config``, layered in order
as the bundle's CLI layers them): ``load_transforms`` and ``train#augmentation`` (field-of-view cuts, synthetic
resections, intensity jitter), without ``derive_targets`` (SADAAn's masks, presence and attention targets, which a
UNet does not use), then image float32 and label map. So the UNet sees the same orientated, windowed,
whole-volume-resized grid as SADAAn.

After every epoch the network, the optimizer, the epoch and iteration counters, the loss history and the UNet's
arguments are written atomically to ``--output`` (temporary file and rename). ``--resume`` continues from it
(loaded with ``torch.load(weights_only=True)``; the random streams restart from ``seed + epoch``, so a resumed run
is reproducible but not identical to an uninterrupted one). ``--max_minutes`` stops the run inside an epoch once
that much wall time has passed in this invocation; the unfinished epoch is not saved and a rerun with
``--resume`` repeats it.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "sadaan_abdominal_ct_segmentation"
NUM_CLASSES = 6  # background + left kidney, right kidney, liver, spleen, pancreas


def unet_arguments(channels: list[int], num_res_units: int = 2) -> dict[str, Any]:
    """Keyword arguments of the UNet (kept in the checkpoint, so the benchmark rebuilds the same network)."""
    if len(channels) < 2 or any(c < 1 for c in channels):
        raise ValueError(f"expected at least two positive channel counts, got {channels}")
    return {"spatial_dims": 3, "in_channels": 1, "out_channels": NUM_CLASSES, "channels": list(channels),
            "strides": [2] * (len(channels) - 1), "num_res_units": num_res_units}  # fmt: skip


def bundle_train_transforms(bundle_root: Path, configs: list[str]) -> list[Any]:
    """The bundle's training transforms without SADAAn's targets, parsed from its configs (layered in order)."""
    import torch
    from monai.bundle import ConfigParser
    from monai.transforms import EnsureTyped

    parser = ConfigParser()
    parser.read_config([str(bundle_root / c) for c in configs])
    parser["bundle_root"] = str(bundle_root)
    parser.get_parsed_content("imports")
    load = parser.get_parsed_content("load_transforms")
    augmentation = parser.get_parsed_content("train#augmentation")
    final = EnsureTyped(keys=["image", "label"], dtype=torch.float32, track_meta=False)
    return [*load, *augmentation, final]


def load_state(path: Path) -> dict[str, Any]:
    """A checkpoint of this script, loaded with ``weights_only=True``."""
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    missing = [k for k in ("model", "optimizer", "epoch", "iteration", "network") if k not in state]
    if missing:
        raise ValueError(f"expected a train_plain_unet.py checkpoint in {path}; missing keys {missing}")
    return state


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` through a temporary file in the same folder, flushed, then renamed over it:
    a crash leaves the previous checkpoint or the new one, never a torn file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_trainer(args: argparse.Namespace) -> tuple[Any, dict[str, Any], list[float]]:
    """``(SupervisedTrainer, UNet arguments, loss history)``, resumed from ``--output`` when asked."""
    import torch
    from monai.data import CacheDataset, DataLoader, load_decathlon_datalist
    from monai.engines import SupervisedTrainer
    from monai.handlers import StatsHandler
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet
    from monai.transforms import Compose
    from monai.utils import set_determinism

    net_args = unet_arguments(args.channels)
    state = load_state(args.output) if args.resume and args.output.is_file() else None
    if state is not None and dict(state["network"]) != net_args:
        raise ValueError(f"expected a checkpoint of the UNet {net_args} in {args.output}, got {state['network']}")
    set_determinism(seed=args.seed + (int(state["epoch"]) if state else 0))
    files = load_decathlon_datalist(str(args.datalist), data_list_key="training")
    transform = Compose(bundle_train_transforms(args.bundle_root, args.train_config))
    dataset = CacheDataset(files, transform, cache_rate=args.cache_rate, num_workers=args.num_workers, progress=False)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.num_workers,
                        drop_last=len(files) >= args.batch_size)  # fmt: skip
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    network = UNet(**net_args).to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=1e-5)
    trainer = SupervisedTrainer(
        device=device, max_epochs=args.epochs, train_data_loader=loader, network=network, optimizer=optimizer,
        loss_function=DiceCELoss(to_onehot_y=True, softmax=True), decollate=False,
        train_handlers=[StatsHandler(tag_name="loss", output_transform=lambda out: float(out["loss"].detach()))],
    )  # fmt: skip
    losses: list[float] = []
    if state is not None:
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        trainer.state.epoch, trainer.state.iteration = int(state["epoch"]), int(state["iteration"])
        losses = [float(x) for x in state.get("losses", [])]
    return trainer, net_args, losses


def attach_checkpointing(trainer: Any, args: argparse.Namespace, net_args: dict[str, Any], losses: list[float]) -> None:
    """Save after every completed epoch; stop inside an epoch once ``--max_minutes`` have passed."""
    from ignite.engine import Events

    start = time.monotonic()
    epoch_losses: list[float] = []

    @trainer.on(Events.ITERATION_COMPLETED)
    def _track(engine: Any) -> None:
        epoch_losses.append(float(engine.state.output["loss"].detach()))
        if (time.monotonic() - start) / 60.0 > args.max_minutes:
            print(f"stopping: {args.max_minutes} minutes passed in epoch {engine.state.epoch} (not saved)")
            engine.terminate()

    @trainer.on(Events.EPOCH_COMPLETED)
    def _save(engine: Any) -> None:
        if engine.should_terminate:
            return
        losses.append(float(sum(epoch_losses) / max(len(epoch_losses), 1)))
        epoch_losses.clear()
        save_state(args.output, {
            "model": engine.network.state_dict(), "optimizer": engine.optimizer.state_dict(),
            "epoch": engine.state.epoch, "iteration": engine.state.iteration, "network": net_args,
            "losses": losses, "datalist": str(args.datalist), "train_config": list(args.train_config),
        })  # fmt: skip
        print(f"epoch {engine.state.epoch}: mean loss {losses[-1]:.4f}; saved {args.output}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datalist", type=Path, required=True, help="decathlon-style datalist (its 'training' split)")
    p.add_argument("--output", type=Path, default=Path("runs/plain_unet/model.pt"), help="checkpoint path")
    p.add_argument("--epochs", type=int, default=40, help="total epochs (a resumed run counts the earlier ones)")
    p.add_argument("--max_minutes", type=float, default=math.inf, help="stop after this much wall time")
    p.add_argument("--resume", action="store_true", help="continue from --output when it exists")
    p.add_argument("--bundle_root", type=Path, default=BUNDLE, help="bundle whose training transforms are used")
    p.add_argument("--train_config", nargs="+", default=["configs/train.json"],
                   help="bundle configs (relative to --bundle_root) layered in order for the transforms")
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 128, 256], help="UNet channels")
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache_rate", type=float, default=1.0)
    p.add_argument("--num_workers", type=int, default=0)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.max_minutes <= 0 or args.lr <= 0:
        p.error("expected --epochs >= 1, --batch_size >= 1, --max_minutes > 0 and --lr > 0")
    return args


def main(argv: list[str] | None = None) -> list[float]:
    """Train; the mean loss of every completed epoch (earlier runs' too when resumed)."""
    args = parse_args(argv)
    trainer, net_args, losses = build_trainer(args)
    if trainer.state.epoch >= args.epochs:
        print(f"{args.output} already holds {trainer.state.epoch} epochs (--epochs {args.epochs}); nothing to do")
        return losses
    attach_checkpointing(trainer, args, net_args, losses)
    trainer.run()
    return losses


if __name__ == "__main__":
    main()
