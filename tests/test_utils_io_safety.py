from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

from monai_sadaan.utils import CheckpointError, atomic_open, atomic_torch_save, load_checkpoint, load_state_dict_checked


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/_sadaan_should_not_exist",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"state": _Evil()}, p, pickle_protocol=2)
    marker = "/tmp/_sadaan_should_not_exist"
    if os.path.exists(marker):
        os.remove(marker)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(p)
    assert not os.path.exists(marker)


def test_missing_empty_truncated_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(tmp_path / "empty.pt")
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(100)}, good)
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "trunc.pt")
    assert torch.equal(load_checkpoint(good, key="w"), torch.ones(100))


def test_state_dict_for_another_configuration_names_the_mismatch():
    a, b = torch.nn.Linear(3, 5), torch.nn.Linear(3, 4)
    with pytest.raises(CheckpointError, match=r"weight: expected \(4, 3\), got \(5, 3\)"):
        load_state_dict_checked(b, a.state_dict())
    with pytest.raises(CheckpointError, match="unexpected keys"):
        load_state_dict_checked(a, {**a.state_dict(), "extra": torch.ones(1)})


def test_atomic_open_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "report.json"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("{half")
            raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_open(target) as f:
        f.write("{}")
    assert target.read_text() == "{}"


def test_killed_writer_leaves_no_file_under_final_name(tmp_path):
    """A writer killed with SIGKILL mid-write leaves at most a hidden temporary file, never the final name."""
    target = tmp_path / "big.pt"
    code = textwrap.dedent(
        f"""
        import os, signal, torch
        from monai_sadaan.utils import atomic_torch_save
        def save(obj, path):
            with open(path, "wb") as f:
                f.write(b"x" * 1000)
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        atomic_torch_save({{}}, {str(target)!r}, save=save)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    assert not target.exists()
    atomic_torch_save({"a": torch.ones(2)}, target)
    assert torch.equal(load_checkpoint(target)["a"], torch.ones(2))


def test_atomic_files_get_default_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "a.txt") as f:
            f.write("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
