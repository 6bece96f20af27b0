"""MONAI engines for the GRU regressor, assembled from the shared glue in :mod:`monai_glue`.

Batches are dicts from :class:`seq_models.data.windows.SlidingWindowDataset` (``as_dict=True``):
``{"image": [B, W, F], "target": [B, W], "lengths": [B]}``. :func:`gru_prepare_batch` hands ``lengths`` to the
network as a forward keyword and, together with ``target``, to the masked loss as a dict of targets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import CheckpointSaver, EarlyStopHandler, StatsHandler, ValidationHandler
from torch import nn

from monai_glue import ComponentLoss, DictTargetPrepareBatch, LossComponentsHandler
from seq_models.metrics.regression import MaskedMSELoss, MaskedRMSE

__all__ = [
    "gru_prepare_batch",
    "create_gru_evaluator",
    "create_gru_trainer",
    "GRU_METRIC",
    "fit_gru_to_series",
    "load_gru_weights",
    "predict_series",
    "run_gru_series_inference",
    "evaluate_gru_on_series",
]

#: name of the evaluator's key metric (masked RMSE in standardised units; lower is better)
GRU_METRIC = "val_rmse"


def gru_prepare_batch(
    image_key: str = "image", target_key: str = "target", lengths_key: str = "lengths"
) -> DictTargetPrepareBatch:
    """Network input ``image``; targets ``{"target", "lengths"}`` for the masked loss; ``lengths`` as forward kwarg."""
    return DictTargetPrepareBatch(
        image_key=image_key,
        target_keys={"target": target_key, "lengths": lengths_key},
        forward_kwargs_keys={"lengths": lengths_key},
    )


def create_gru_evaluator(
    network: nn.Module,
    val_loader: Iterable,
    device: str | torch.device = "cpu",
    checkpoint_dir: str | os.PathLike | None = None,
    extra_handlers: list[Any] | None = None,
    skip_first: int = 0,
) -> SupervisedEvaluator:
    """A ``SupervisedEvaluator`` scoring the masked RMSE; keeps the best network in ``checkpoint_dir``.

    Args:
        network: :class:`~seq_models.networks.gru_regression.PaddedGRURegressor`.
        val_loader: dict batches (see the module docstring).
        device: evaluation device.
        checkpoint_dir: where ``CheckpointSaver`` writes the best model (``{"model": state_dict}``); ``None``: no
            checkpoint.
        extra_handlers: more handlers to attach.
        skip_first: lead-in steps of every validation window left out of the RMSE (``window // 2`` leaves exactly
            the validation part of :meth:`~seq_models.data.series.SeriesRegressionData.val_windows` scored).

    Returns:
        the evaluator; ``evaluator.state.best_metric`` is the lowest validation RMSE seen.
    """
    handlers: list[Any] = [StatsHandler(iteration_log=False, output_transform=lambda x: None)]
    if checkpoint_dir is not None:
        handlers.append(
            CheckpointSaver(
                save_dir=str(checkpoint_dir),
                save_dict={"model": network},
                save_key_metric=True,
                key_metric_negative_sign=True,  # lower RMSE is better
                key_metric_filename="model.pt",
            )
        )
    handlers += extra_handlers or []
    return SupervisedEvaluator(
        device=torch.device(device),
        val_data_loader=val_loader,
        network=network,
        prepare_batch=gru_prepare_batch(),
        key_val_metric={GRU_METRIC: MaskedRMSE(skip_first=skip_first)},
        metric_cmp_fn=lambda current, best: current < best,
        val_handlers=handlers,
        amp=False,
    )


def create_gru_trainer(
    network: nn.Module,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    max_epochs: int,
    device: str | torch.device = "cpu",
    evaluator: SupervisedEvaluator | None = None,
    val_interval: int = 1,
    patience: int | None = None,
    lr_scheduler: Any | None = None,
    extra_handlers: list[Any] | None = None,
    loss_skip_first: int = 0,
) -> SupervisedTrainer:
    """A ``SupervisedTrainer`` with the masked MSE, stats, validation and early stopping.

    Args:
        network: the batch model.
        train_loader: dict batches.
        optimizer: optimiser over ``network``'s parameters.
        max_epochs: epochs.
        device: training device.
        evaluator: from :func:`create_gru_evaluator`; run every ``val_interval`` epochs.
        val_interval: epochs between validations.
        patience: stop after this many validations without a better RMSE (needs ``evaluator``).
        lr_scheduler: a scheduler stepped once per epoch (MONAI ``LrScheduleHandler``), or ``None``.
        extra_handlers: more handlers.
        loss_skip_first: warm-up steps of every window left out of the loss.

    Returns:
        the trainer; per-iteration ``loss`` and ``loss_total`` in ``engine.state.output``.
    """
    from monai.handlers import LrScheduleHandler

    loss = ComponentLoss(MaskedMSELoss(skip_first=loss_skip_first))
    handlers: list[Any] = [
        LossComponentsHandler(loss),
        StatsHandler(
            tag_name="train_loss", output_transform=lambda o: o["loss"].item() if isinstance(o, dict) else None
        ),
    ]
    if lr_scheduler is not None:
        handlers.append(LrScheduleHandler(lr_scheduler, print_lr=False))
    if evaluator is not None:
        handlers.append(ValidationHandler(validator=evaluator, interval=val_interval, epoch_level=True))
    trainer = SupervisedTrainer(
        device=torch.device(device),
        max_epochs=max_epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=loss,
        prepare_batch=gru_prepare_batch(),
        train_handlers=handlers + (extra_handlers or []),
        amp=False,
    )
    if patience is not None:
        if evaluator is None:
            raise ValueError("expected an evaluator for early stopping, got None")
        EarlyStopHandler(
            patience=patience, score_function=lambda engine: -engine.state.metrics[GRU_METRIC], trainer=trainer
        ).attach(evaluator)
    return trainer


def load_gru_weights(network: nn.Module, checkpoint: str | os.PathLike) -> nn.Module:
    """Load a checkpoint written by the evaluator's ``CheckpointSaver`` (or a plain state dict) into ``network``.

    Uses ``load_checkpoint`` (``weights_only=True``) and ``load_state_dict_checked`` (errors name what differs).
    The batch model's checkpoint loads into the single-step model too (same submodule names).
    """
    from monai_glue import load_checkpoint, load_state_dict_checked

    state = load_checkpoint(checkpoint, key="model")
    load_state_dict_checked(network, state, source=str(checkpoint))
    return network


@torch.no_grad()
def predict_series(
    network: nn.Module,
    features: Any,
    mode: str = "full",
    window: int = 512,
    burn_in: int = 128,
    sw_batch_size: int = 16,
) -> torch.Tensor:
    """Per-step predictions over a whole series with a trained batch model (eval mode).

    Args:
        network: :class:`~seq_models.networks.gru_regression.PaddedGRURegressor`.
        features: [T, F] array or tensor.
        mode: ``"full"`` (one sequential pass), ``"sliding_window"`` (:class:`TimeSlidingWindowInferer`) or
            ``"streaming"`` (:class:`GRUStreamingInferer`, one tick at a time).
        window, burn_in, sw_batch_size: sliding-window settings.

    Returns:
        [T] predictions.
    """
    from seq_models.inferers.sliding_window import TimeSlidingWindowInferer
    from seq_models.inferers.streaming import GRUStreamingInferer

    x = torch.as_tensor(features, dtype=torch.float32)
    if x.dim() != 2:
        raise ValueError(f"expected features of shape [T, F], got {list(x.shape)}")
    network.eval()
    if mode == "full":
        return network(x[None])[0]
    if mode == "sliding_window":
        return TimeSlidingWindowInferer(window, burn_in, sw_batch_size=sw_batch_size)(x[None], network)[0]
    if mode == "streaming":
        return GRUStreamingInferer(network).run(x)[0]
    raise ValueError(f"expected mode 'full', 'sliding_window' or 'streaming', got {mode!r}")


def fit_gru_to_series(
    data: Any,
    hidden_size: int = 32,
    num_layers: int = 1,
    window: int = 64,
    stride: int = 2,
    val_size: int = 40,
    batch_size: int = 16,
    max_epochs: int = 100,
    lr: float = 3e-3,
    patience: int | None = 30,
    checkpoint_dir: str | os.PathLike | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    loss_skip_first: int = 8,
    weight_decay: float = 0.0,
    zero_head: bool = False,
    val_skip_lead_in: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train a :class:`PaddedGRURegressor` on a :class:`~seq_models.data.series.SeriesRegressionData` head.

    Windows of the training head feed MONAI's ``SupervisedTrainer``; a ``SupervisedEvaluator`` on the last
    ``val_size`` training steps keeps the best weights (``CheckpointSaver``) and stops early. With
    ``val_size=0`` the whole head is trained on for ``max_epochs`` and the final weights are kept. The first
    ``loss_skip_first`` steps of every window (cold hidden state) are left out of the loss. The optimiser is AdamW
    (``weight_decay``, decoupled; 0 is plain Adam) with a cosine learning-rate schedule over ``max_epochs``;
    ``zero_head`` starts the network's output at 0 (see :class:`PaddedGRURegressor`). With ``val_skip_lead_in``
    the validation RMSE counts the last ``val_size`` head steps only (not the ``window // 2`` training steps of
    lead-in before each validation window). The held-out tail is never seen. Returns the network with the kept
    weights loaded and a summary dict (``best_val_rmse``, ``best_epoch``, ``epochs_run``, ``checkpoint``; the
    first two are ``None`` without validation).
    """
    from monai_glue import atomic_torch_save
    import tempfile

    from torch.utils.data import DataLoader

    from seq_models.networks.gru_regression import PaddedGRURegressor

    torch.manual_seed(seed)
    network = PaddedGRURegressor(data.num_features, hidden_size, num_layers, zero_head=zero_head).to(device)
    train_loader = DataLoader(
        data.train_windows(window, stride, val_size), batch_size=batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    val_loader = DataLoader(data.val_windows(window, val_size), batch_size=64, shuffle=False) if val_size else None
    tmp = None
    if checkpoint_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="gru_fit_")
        checkpoint_dir = tmp.name
    try:
        evaluator = (
            create_gru_evaluator(
                network, val_loader, device=device, checkpoint_dir=checkpoint_dir,
                skip_first=window // 2 if val_skip_lead_in else 0,
            )
            if val_loader is not None
            else None
        )
        optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
        trainer = create_gru_trainer(
            network, train_loader, optimizer, max_epochs, device=device, evaluator=evaluator,
            patience=patience if evaluator is not None else None, lr_scheduler=scheduler,
            loss_skip_first=loss_skip_first,
        )
        trainer.run()
        ckpt = os.path.join(str(checkpoint_dir), "model.pt")
        if evaluator is None:
            atomic_torch_save(network.state_dict(), ckpt)
        load_gru_weights(network, ckpt)
        info = {
            "best_val_rmse": float(evaluator.state.best_metric) if evaluator is not None else None,
            "best_epoch": int(evaluator.state.best_metric_epoch) if evaluator is not None else None,
            "epochs_run": int(trainer.state.epoch),
            "checkpoint": None if tmp is not None else ckpt,
        }
    finally:
        if tmp is not None:
            tmp.cleanup()
    return network.eval(), info


def run_gru_series_inference(
    network: nn.Module,
    checkpoint: str | os.PathLike,
    data: Any,
    output_file: str | os.PathLike,
    mode: str = "full",
    window: int = 512,
    burn_in: int = 128,
) -> torch.Tensor:
    """Bundle inference: load weights, predict every step of ``data``'s series, write a CSV atomically.

    Args:
        network: :class:`~seq_models.networks.gru_regression.PaddedGRURegressor` of the checkpoint's configuration.
        checkpoint: weights file (see :func:`load_gru_weights`).
        data: :class:`~seq_models.data.series.SeriesRegressionData`.
        output_file: CSV with columns ``step, value, target_step, prediction`` (raw units, through
            ``data.to_values`` whatever the target kind; the prediction made at ``step`` is for
            ``target_step = step + horizon``).
        mode: ``"full"``, ``"sliding_window"`` or ``"streaming"`` (see :func:`predict_series`).

    Returns:
        [T] predictions in raw units.
    """
    from monai_glue import atomic_open

    load_gru_weights(network, checkpoint)
    z = predict_series(network, data.features, mode=mode, window=window, burn_in=burn_in)
    pred = data.to_values(z.numpy())
    with atomic_open(output_file, newline="") as f:
        f.write("step,value,target_step,prediction\n")
        for t, (v, p) in enumerate(zip(data.series, pred)):
            f.write(f"{t},{v:.6g},{t + data.horizon},{p:.6g}\n")
    return torch.as_tensor(pred)


def evaluate_gru_on_series(
    network: nn.Module,
    checkpoint: str | os.PathLike,
    data: Any,
    output_dir: str | os.PathLike,
    ar_max_order: int = 30,
) -> dict[str, float]:
    """Bundle evaluation: held-out RMSE of the GRU (full pass and streaming) against persistence and linear AR.

    The linear AR's order is chosen by AIC on the head; for a series with a seasonal ``data.period`` it is the
    seasonal-anomaly AR (:class:`~seq_models.baselines.autoregressive.LinearARForecaster` ``period``).

    Writes ``metrics.json`` and ``heldout.png`` (truth and forecasts over the held-out tail) into ``output_dir``.

    Returns:
        ``{"gru", "gru_streaming", "persistence", "linear_ar", "ar_order"}`` RMSE values in raw units.
    """
    import json

    import numpy as np

    from monai_glue import atomic_open, atomic_write_with
    from seq_models.baselines.autoregressive import LinearARForecaster, persistence_forecast

    load_gru_weights(network, checkpoint)
    n_test = data.test_size
    truth = data.test_truth()
    gru = data.test_predictions(predict_series(network, data.features, mode="full").numpy())
    gru_stream = data.test_predictions(predict_series(network, data.features, mode="streaming").numpy())
    pers = persistence_forecast(data.series, n_test, data.horizon)
    head = data.series[: data.train_end + data.horizon]
    ar = LinearARForecaster(max_order=ar_max_order, horizon=data.horizon, period=data.period).fit(head)
    ar_pred = ar.predict_tail(data.series, n_test)

    def rmse(p: np.ndarray) -> float:
        return float(np.sqrt(np.mean((np.asarray(p) - truth) ** 2)))

    out = {
        "gru": rmse(gru),
        "gru_streaming": rmse(gru_stream),
        "persistence": rmse(pers),
        "linear_ar": rmse(ar_pred),
        "ar_order": int(ar.order),
    }
    os.makedirs(output_dir, exist_ok=True)
    with atomic_open(os.path.join(str(output_dir), "metrics.json")) as f:
        json.dump(out, f, indent=2)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    steps = np.arange(len(data.series) - n_test, len(data.series))
    ax.plot(steps, truth, "k-", lw=2, label="truth")
    ax.plot(steps, gru, label=f"GRU ({out['gru']:.3g})")
    ax.plot(steps, ar_pred, "--", label=f"linear AR({ar.order}) ({out['linear_ar']:.3g})")
    ax.plot(steps, pers, ":", label=f"persistence ({out['persistence']:.3g})")
    ax.set_xlabel("step")
    ax.set_title(f"held-out tail, {data.horizon} step(s) ahead; RMSE in legend")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write_with(os.path.join(str(output_dir), "heldout.png")) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out
