from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

from monai_glue import CheckpointError, atomic_open, atomic_torch_save, load_checkpoint, load_state_dict_checked


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
        from monai_glue import atomic_torch_save
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


# ---------------------------------------------------------------- atomic_directory replaces only what it wrote
def test_atomic_directory_never_replaces_a_folder_it_did_not_write(tmp_path):
    """Before: an existing folder of the name was removed with rmtree, whatever it held."""
    from monai_glue import OutputFolderError, atomic_directory

    target = tmp_path / "series"
    target.mkdir()
    (target / "IM0001.dcm").write_bytes(b"user data")
    with pytest.raises(OutputFolderError, match=r"found a folder that holds 1 entry this tool did not write: IM0001"):
        with atomic_directory(target) as tmp:
            (tmp / "slice_0001.dcm").write_bytes(b"new")
    assert sorted(p.name for p in target.iterdir()) == ["IM0001.dcm"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]  # no staging left


def test_atomic_directory_replaces_its_own_folder_unless_files_were_added(tmp_path):
    from monai_glue import OutputFolderError, atomic_directory

    target = tmp_path / "store.zarr"
    for content in (b"one", b"two"):
        with atomic_directory(target) as tmp:
            (tmp / "sub").mkdir()
            (tmp / "sub" / "chunk").write_bytes(content)
    assert (target / "sub" / "chunk").read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".store.zarr.sadaan-directory.json", "store.zarr"]
    (target / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match=r"found 1 entry this tool did not write: notes.txt"):
        with atomic_directory(target) as tmp:
            (tmp / "x").write_bytes(b"x")
    assert (target / "notes.txt").read_text() == "mine" and (target / "sub" / "chunk").read_bytes() == b"two"
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_directory(empty) as tmp:  # an empty folder holds nothing to lose
        (tmp / "a").write_bytes(b"a")
    assert (empty / "a").read_bytes() == b"a"


def test_atomic_directory_failure_keeps_the_earlier_folder(tmp_path):
    from monai_glue import atomic_directory

    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_bytes(b"first")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_directory(target) as tmp:
            (tmp / "a").write_bytes(b"second")
            raise RuntimeError("boom")
    assert (target / "a").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.sadaan-directory.json", "out"]


def test_stale_staging_of_a_dead_process_is_removed_and_live_staging_kept(tmp_path):
    import json

    from monai_glue.atomic import make_staging_dir, remove_stale_staging

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = make_staging_dir(tmp_path, "x")
    marker = json.loads((dead / ".sadaan-staging.json").read_text())
    (dead / ".sadaan-staging.json").write_text(json.dumps({**marker, "pid": proc.pid}))
    live = make_staging_dir(tmp_path, "y")  # this process
    unmarked = tmp_path / ".x.partial-looks-like-ours"
    unmarked.mkdir()
    assert remove_stale_staging(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, unmarked.name])
