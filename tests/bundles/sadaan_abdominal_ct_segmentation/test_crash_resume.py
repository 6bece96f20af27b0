"""Crash and resume: a tiny SADAAn bundle training run killed with SIGKILL after its first epoch resumes from the
last saved training state and ends with the same metrics history as an uninterrupted run of the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "sadaan_abdominal_ct_segmentation"
TINY = ["--spatial_size", "[16,16,16]", "--features", "[2,4,4,4,4]", "--feature_channels", "4"]
EPOCHS = 3


def _cmd(root: Path, data: Path) -> list[str]:
    return [
        sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/train.json", "--bundle_root", str(root),
        "--data_dir", str(data), "--num_cases", "14", "--epochs", str(EPOCHS), "--val_interval", "1",
        "--batch_size", "2", *TINY,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=BUNDLE, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=600, env=_env()
    )


def _history(root: Path) -> list[dict]:
    p = root / "models" / "metrics_history.json"
    return json.loads(p.read_text()) if p.is_file() else []


@pytest.mark.slow
def test_sigkill_mid_training_resumes_to_the_uninterrupted_history(tmp_path):
    data = tmp_path / "data"
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    r = _run(_cmd(full, data))
    assert r.returncode == 0, r.stderr[-3000:]
    reference = _history(full)
    assert [h["epoch"] for h in reference] == list(range(1, EPOCHS + 1))

    # the same command, killed with SIGKILL as soon as the first epoch's state is on disk (epoch 2 running)
    log = open(tmp_path / "crashed.log", "w+", encoding="utf-8", errors="replace")
    proc = subprocess.Popen(_cmd(crashed, data), cwd=BUNDLE, stdout=log, stderr=subprocess.STDOUT, env=_env())
    deadline = time.monotonic() + 600
    try:
        while not _history(crashed) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        log.seek(0)
        output = log.read()[-3000:]
        log.close()
    assert proc.returncode == -signal.SIGKILL, f"the run ended ({proc.returncode}) before it could be killed: {output}"
    saved = _history(crashed)
    assert 1 <= len(saved) < EPOCHS, ([h["epoch"] for h in saved], output)  # killed mid-run, at most one epoch lost
    state = torch.load(crashed / "models" / "training_state.pt", weights_only=True)  # complete, loadable
    assert isinstance(state, dict) and "model" in state
    # no half-written file under a final name: every JSON parses
    for p in (crashed / "models").rglob("*.json"):
        json.loads(p.read_text())

    # rerun the same command: it resumes and finishes
    r = _run(_cmd(crashed, data))
    assert r.returncode == 0, r.stderr[-3000:]
    resumed = _history(crashed)
    assert [h["epoch"] for h in resumed] == list(range(1, EPOCHS + 1))
    for a, b in zip(reference, resumed):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), (a["epoch"], k)


def test_resumed_schedule_follows_the_resuming_run_length():
    """A run stopped after 2 of 2 epochs and resumed with 4 epochs gets the 4-epoch cosine schedule's rates."""
    from monai_sadaan.handlers import TrainingStateCheckpoint

    def make(epochs):
        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([param], lr=1.0)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.1)
        return param, optimizer, scheduler

    def run(optimizer, scheduler, epochs):
        rates = []
        for _ in range(epochs):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return rates

    _, optimizer, scheduler = make(4)
    uninterrupted = run(optimizer, scheduler, 4)
    _, part_optimizer, part_scheduler = make(2)
    run(part_optimizer, part_scheduler, 2)
    _, optimizer, scheduler = make(4)
    optimizer.load_state_dict(part_optimizer.state_dict())  # the stopped run's rate: the 2-epoch schedule's end
    handler = TrainingStateCheckpoint(save_dir=".", network=torch.nn.Linear(1, 1), optimizer=optimizer, lr_scheduler=scheduler)
    handler._restore_schedule_position(part_scheduler.state_dict())
    resumed = run(optimizer, scheduler, 2)
    assert resumed == pytest.approx(uninterrupted[2:], rel=1e-12)
    assert uninterrupted[2] == pytest.approx(0.1 + 0.9 * 0.5)  # cos(pi * 2 / 4) = 0: halfway between 1 and 0.1
