from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer

from monai_glue import ComponentLoss, DictTargetPrepareBatch, LossComponentsHandler, PickFromDictOutput


def test_prepare_batch_splits_image_targets_and_forward_kwargs():
    batch = {"x": torch.ones(2, 3), "y": torch.zeros(2), "lengths": torch.tensor([3, 1]), "meta": "m"}
    pb = DictTargetPrepareBatch("x", {"target": "y"}, {"lengths": "lengths"})
    image, targets, args, kwargs = pb(batch, torch.device("cpu"))
    assert torch.equal(image, batch["x"]) and set(targets) == {"target"} and args == ()
    assert kwargs["lengths"].tolist() == [3, 1]
    image, targets = DictTargetPrepareBatch("x", ["y"])(batch, None)
    assert list(targets) == ["y"]
    with pytest.raises(KeyError, match="expected key 'label'"):
        DictTargetPrepareBatch("x", ["label"])(batch, None)


def test_pick_from_dict_output_errors_name_keys():
    out = {"pred": {"a": 1}, "label": {"b": 2}}
    assert PickFromDictOutput("a", "b")(out) == (1, 2)
    with pytest.raises(KeyError, match="'c'"):
        PickFromDictOutput("c", "b")(out)


class _TwoPartLoss(torch.nn.Module):
    def forward(self, pred, target):
        a = ((pred["y"] - target["y"]) ** 2).mean()
        b = pred["y"].abs().mean()
        return {"total": a + 0.1 * b, "mse": a, "l1": b}


class _DictNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def forward(self, x, scale=1.0):
        return {"y": self.lin(x).squeeze(-1) * scale}


def test_trainer_runs_with_dict_outputs_and_logs_components():
    torch.manual_seed(0)
    x = torch.randn(16, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    data = [{"x": x[i : i + 4], "y": y[i : i + 4], "scale": torch.tensor(1.0)} for i in range(0, 16, 4)]
    net = _DictNet()
    loss = ComponentLoss(_TwoPartLoss())
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=30,
        train_data_loader=data,
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
        loss_function=loss,
        prepare_batch=DictTargetPrepareBatch("x", ["y"], {"scale": "scale"}),
        decollate=False,
    )
    LossComponentsHandler(loss).attach(trainer)
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(e.state.output["loss"].item()))
    trainer.run()
    assert losses[-1] < 0.1 * losses[0]
    assert set(trainer.state.metrics) >= {"loss_total", "loss_mse", "loss_l1"}
    assert trainer.state.output["loss_mse"] == pytest.approx(loss.components["mse"])
