"""A real MONAI Label server (monailabel 0.8.5, in .venv-monailabel) serving SADAAn, called over HTTP on 127.0.0.1 the
way 3D Slicer's MONAI Label module calls it: ``GET /info/``, ``POST /activelearning/random`` (Next Sample),
``GET /datastore/image``, ``POST /infer/<model>?image=<id>`` with a multipart ``params`` field, and the multipart
answer (``params`` JSON + the label file). The label map and presence report are compared with a plain run of the
bundle (``python -m monai.bundle run``) on the same phantom in the project's own environment.

The server is a module fixture: under pytest-xdist (``make test``: ``-n 2``) each worker that runs tests of this module
starts its own, on its own free port (about 15 s each, in parallel).

The server needs its own environment (``make monailabel``; ``make test`` builds it). Without it the test is skipped,
unless ``SADAAN_REQUIRE_MONAILABEL`` is set (``make test`` and CI set it), which makes it fail instead.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import uuid
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[3]
ML_PYTHON = REPO / ".venv-monailabel" / "bin" / "python"
MODEL = "sadaan_abdominal_ct_segmentation"
BUNDLE = REPO / "bundles" / MODEL
STRUCTURES = {"left_kidney": 1, "right_kidney": 2, "liver": 3, "spleen": 4, "pancreas": 5}
CASE = "case31"
START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


# ------------------------------------------------------------------------------------------------ HTTP as Slicer does
def _request(base: tuple[str, int], method: str, selector: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:  # fmt: skip
    """One HTTP request; ``(status, content type, body)``."""
    conn = http.client.HTTPConnection(*base, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request(method, selector, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type", ""), resp.read()
    finally:
        conn.close()


def _multipart_body(fields: dict[str, str]) -> tuple[str, bytes]:
    """A multipart/form-data body of text fields, as the Slicer module's client sends ``params``."""
    boundary = f"----sadaan{uuid.uuid4().hex}"
    lines: list[bytes] = []
    for name, value in fields.items():
        lines += [f"--{boundary}".encode(), f'Content-Disposition: form-data; name="{name}"'.encode(), b"",
                  value.encode()]  # fmt: skip
    lines += [f"--{boundary}--".encode(), b""]
    return f"multipart/form-data; boundary={boundary}", b"\r\n".join(lines)


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Split a multipart answer into text fields and files (by file name), as the Slicer module's client does."""
    assert content_type.startswith("multipart/"), f"expected a multipart answer, got {content_type!r}: {body[:300]!r}"
    msg = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in msg.iter_parts():
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename:
            files[filename] = payload
        else:
            fields[str(part.get_param("name", header="content-disposition"))] = payload.decode("utf-8")
    return fields, files


def _infer(base: tuple[str, int], image: str) -> tuple[int, str, bytes]:
    content_type, body = _multipart_body({"params": json.dumps({"client_id": "sadaan-test"})})
    selector = f"/infer/{quote_plus(MODEL)}?image={quote_plus(image)}"
    return _request(base, "POST", selector, body, {"content-type": content_type, "content-length": str(len(body))})


# ------------------------------------------------------------------------------------------------ the server
def _log_tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-n:]
    except OSError:
        return "(no server log)"


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the server's process group; kill it if it outlives STOP_TIMEOUT_S."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A phantom in a studies folder, the bundle's own result for it, and a running MONAI Label server."""
    if not ML_PYTHON.is_file():
        message = (
            f"expected the MONAI Label environment at {ML_PYTHON.parent.parent} (make monailabel), found none"
        )
        if os.environ.get("SADAAN_REQUIRE_MONAILABEL"):
            pytest.fail(message + "; SADAAN_REQUIRE_MONAILABEL is set, so this is an error, not a skip")
        pytest.skip(message)
    from monai_sadaan.data import generate_phantom, save_phantom

    root = tmp_path_factory.mktemp("monailabel")
    studies, ref_in, ref_out = root / "studies", root / "reference_input", root / "reference_output"
    for d in (studies, ref_in):
        d.mkdir()
    phantom = generate_phantom("nephrectomy_left", seed=31)
    image_path, _ = save_phantom(phantom, studies / f"{CASE}.nii.gz")
    shutil.copy2(image_path, ref_in / image_path.name)
    broken = root / "broken.nii.gz"
    broken.write_bytes(gzip.compress(b"not a NIfTI header" * 10))

    env = dict(os.environ, OMP_NUM_THREADS="1", MONAI_LABEL_SESSION_PATH=str(root / "sessions"))
    env.pop("PYTHONPATH", None)
    port = free_port()
    log_path = root / "server.log"
    cmd = [str(ML_PYTHON), "-m", "monai_sadaan.monailabel", "serve", "--studies", str(studies),
           "--app_dir", str(root / "app"), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # the bundle's own run on the same image while the server starts (project environment)
        configs = BUNDLE / "configs"
        ref = subprocess.run(
            [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(configs / "inference.json"),
             "--meta_file", str(configs / "metadata.json"), "--logging_file", str(configs / "logging.conf"),
             "--bundle_root", str(BUNDLE), "--dataset_dir", str(ref_in), "--output_dir", str(ref_out)],  # fmt: skip
            cwd=root, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300,
        )
        assert ref.returncode == 0, f"the bundle run failed:\n{ref.stdout[-2000:]}\n{ref.stderr[-3000:]}"

        base = ("127.0.0.1", port)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the MONAI Label server exited with {proc.returncode}:\n{_log_tail(log_path)}")
            try:
                status, _, body = _request(base, "GET", "/info/")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the MONAI Label server did not answer /info/ within {START_TIMEOUT_S:.0f} s:\n"
                            f"{_log_tail(log_path)}")  # fmt: skip
            time.sleep(0.5)
        yield {
            "base": base, "proc": proc, "log": log_path, "phantom": phantom, "image": image_path,
            "broken": broken, "reference": ref_out / CASE,
        }  # fmt: skip
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def inferred(served: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The infer call as Slicer makes it: the image id from Next Sample, params as a multipart field."""
    base = served["base"]
    status, _, body = _request(base, "POST", "/activelearning/random", b"{}", {"content-type": "application/json"})
    assert status == 200, f"Next Sample failed ({status}): {body[:500]!r}\n{_log_tail(served['log'])}"
    sample = json.loads(body)
    assert sample.get("id") == CASE, f"expected Next Sample to give {CASE!r}, got {sample}"
    status, _, image_bytes = _request(base, "GET", f"/datastore/image?image={CASE}")
    assert status == 200 and image_bytes == served["image"].read_bytes(), "expected the studies file back unchanged"

    t0 = time.monotonic()
    status, content_type, body = _infer(base, sample["id"])
    seconds = time.monotonic() - t0
    assert status == 200, f"infer failed ({status}): {body[:1000]!r}\n{_log_tail(served['log'])}"
    fields, files = _parse_multipart(content_type, body)
    assert set(fields) == {"params"} and len(files) == 1, f"expected params and one file, got {fields}, {list(files)}"
    (name, data), = files.items()
    path = tmp_path_factory.mktemp("answer") / name
    path.write_bytes(data)
    return {"params": json.loads(fields["params"]), "name": name, "bytes": data, "path": path, "seconds": seconds}


# ------------------------------------------------------------------------------------------------ the checks
def test_info_lists_the_labels_with_their_values(served: dict[str, Any]) -> None:
    status, _, body = _request(served["base"], "GET", "/info/")
    assert status == 200
    info = json.loads(body)
    assert info["labels"] == STRUCTURES, f"expected /info/ labels {STRUCTURES}, got {info['labels']}"
    assert 0 not in info["labels"].values(), "label value 0 is the background"
    model = info["models"].get(MODEL)
    assert model is not None, f"expected the model {MODEL!r} in /info/, got {list(info['models'])}"
    assert model["type"] == "segmentation" and model["dimension"] == 3
    assert model["labels"] == STRUCTURES, f"expected the model's labels {STRUCTURES}, got {model['labels']}"


def test_infer_returns_a_real_nifti_label_map_in_the_input_geometry(served: dict[str, Any], inferred: dict) -> None:
    name, data = inferred["name"], inferred["bytes"]
    assert name.endswith(".nii.gz"), f"expected a .nii.gz file, got {name!r}"
    assert data[:2] == b"\x1f\x8b", f"expected gzip data in {name}, got first bytes {data[:8]!r}"
    raw = gzip.decompress(data)
    assert struct.unpack("<i", raw[:4])[0] == 348 and raw[344:348] == b"n+1\x00", (
        f"expected a NIfTI-1 header (sizeof_hdr 348, magic 'n+1'), got {raw[:4]!r} ... {raw[344:348]!r}"
    )
    img = nib.load(str(inferred["path"]))
    assert isinstance(img, nib.Nifti1Image)
    labels = np.asarray(img.dataobj)
    assert np.issubdtype(labels.dtype, np.integer), f"expected an integer label map, got {labels.dtype}"
    values = set(np.unique(labels).tolist())
    assert values <= {0, 1, 2, 3, 4, 5}, f"expected label values within 0..5, got {sorted(values)}"
    assert values == {0, 2, 3, 4, 5}, f"expected background and the four remaining structures, got {sorted(values)}"
    source = nib.load(str(served["image"]))
    assert labels.shape == source.shape, f"expected the input's shape {source.shape}, got {labels.shape}"
    np.testing.assert_allclose(img.affine, source.affine, atol=1e-4, err_msg="label map affine != input affine")


def test_presence_travels_in_the_params(served: dict[str, Any], inferred: dict[str, Any]) -> None:
    params = inferred["params"]
    assert params["label_names"] == STRUCTURES, f"expected label_names {STRUCTURES}, got {params.get('label_names')}"
    rows = {r["structure"]: r for r in params["structures"]}
    assert list(rows) == list(STRUCTURES), f"expected one row per structure in order, got {list(rows)}"
    truth = served["phantom"].present
    assert truth["left_kidney"] is False and all(v for k, v in truth.items() if k != "left_kidney")
    for name, row in rows.items():
        assert row["label"] == STRUCTURES[name]
        assert row["present"] is truth[name], f"{name}: expected present={truth[name]}, got {row}"
        assert 0.0 <= row["presence_probability"] <= 1.0 and 0.0 <= row["confidence"] <= 1.0, row
        assert (row["presence_probability"] >= 0.5) is truth[name], row
        assert (row["volume_ml"] > 0) is truth[name], f"{name}: volume {row['volume_ml']} mL"
    assert params["absent"] == ["left_kidney"], params["absent"]
    assert params["input_flags"] == [] and params["warnings"] == [], params["input_flags"]
    assert params["case"] == CASE and params["bundle"]["name"] == MODEL
    assert "left_kidney" in params["summary"] and "absent" in params["summary"]
    # volumes are counted from the returned label map
    img = nib.load(str(inferred["path"]))
    labels = np.asarray(img.dataobj)
    voxel_ml = abs(np.linalg.det(img.affine[:3, :3])) / 1000.0
    for name, value in STRUCTURES.items():
        expected = float((labels == value).sum()) * voxel_ml
        assert rows[name]["volume_ml"] == pytest.approx(expected, rel=1e-4, abs=1e-3), name


def test_server_result_equals_the_bundle_run(served: dict[str, Any], inferred: dict[str, Any]) -> None:
    ref_dir = served["reference"]
    ref_labels = np.asarray(nib.load(str(ref_dir / f"{CASE}_labels.nii.gz")).dataobj)
    labels = np.asarray(nib.load(str(inferred["path"])).dataobj)
    assert labels.shape == ref_labels.shape
    differ = int((labels != ref_labels).sum())
    assert differ <= labels.size * 1e-4, f"{differ} of {labels.size} voxels differ from the bundle's own label map"
    ref = json.loads((ref_dir / f"{CASE}_presence.json").read_text(encoding="utf-8"))
    rows = {r["structure"]: r for r in inferred["params"]["structures"]}
    for r in ref["structures"]:
        got = rows[r["structure"]]
        assert got["present"] == r["present"], (r, got)
        assert got["presence_probability"] == pytest.approx(r["presence_probability"], abs=1e-4), (r, got)
        assert got["confidence"] == pytest.approx(r["confidence"], abs=1e-4), (r, got)
        assert got["volume_ml"] == pytest.approx(r["volume_ml"], rel=1e-3, abs=0.05), (r, got)


def test_monailabel_client_reads_the_answer(served: dict[str, Any], tmp_path: Path) -> None:
    """monailabel's own client (the one the Slicer module ships a copy of) parses the answer into a file + params."""
    script = (
        "import json, sys\n"
        "from monailabel.client import MONAILabelClient\n"
        "c = MONAILabelClient(sys.argv[1], tmpdir=sys.argv[2])\n"
        "info = c.info()\n"
        "path, params = c.infer(sys.argv[3], sys.argv[4], {})\n"
        "print(json.dumps({'labels': info['labels'], 'path': path, 'params': params}))\n"
    )
    host, port = served["base"]
    out = subprocess.run(
        [str(ML_PYTHON), "-c", script, f"http://{host}:{port}", str(tmp_path), MODEL, CASE],
        capture_output=True, text=True, timeout=REQUEST_TIMEOUT_S,
    )
    assert out.returncode == 0, f"monailabel's client failed:\n{out.stderr[-3000:]}\n{_log_tail(served['log'])}"
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["labels"] == STRUCTURES
    assert got["params"]["label_names"] == STRUCTURES and got["params"]["absent"] == ["left_kidney"]
    assert got["path"].endswith(".nii.gz")
    labels = np.asarray(nib.load(got["path"]).dataobj)
    assert set(np.unique(labels).tolist()) == {0, 2, 3, 4, 5}


def test_unreadable_image_is_a_client_error_with_its_reason(served: dict[str, Any]) -> None:
    status, _, body = _infer(served["base"], str(served["broken"]))
    assert status == 422, f"expected 422 for a corrupt image, got {status}: {body[:500]!r}"
    detail = json.loads(body)["detail"]
    assert "SADAAn could not use the image" in detail and "broken.nii.gz" in detail, detail
    status, _, _ = _request(served["base"], "GET", "/info/")
    assert status == 200, "the server should keep serving after a bad request"


def test_app_folder_is_written_and_another_app_is_never_overwritten(tmp_path: Path) -> None:
    """``python -m monai_sadaan.monailabel app DEST`` (no monailabel needed): main.py that imports the app class."""
    from monai_sadaan.monailabel.__main__ import APP_MAIN, main, server_command, write_app

    dest = tmp_path / "app"
    assert main(["app", str(dest)]) == 0
    assert (dest / "main.py").read_text(encoding="utf-8") == APP_MAIN
    assert "from monai_sadaan.monailabel.app import SADAAnApp" in APP_MAIN
    assert write_app(dest) == dest.resolve()  # the same app again: fine
    other = tmp_path / "other"
    other.mkdir()
    (other / "main.py").write_text("# another MONAI Label app\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="another main.py"):
        write_app(other)
    assert (other / "main.py").read_text(encoding="utf-8") == "# another MONAI Label app\n"
    cmd = server_command(dest, "/data/cts", port=8123, device="cpu", python="py")
    assert cmd[:4] == ["py", "-m", "monailabel.main", "start_server"]
    assert cmd[cmd.index("--app") + 1] == str(dest) and cmd[cmd.index("--port") + 1] == "8123"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[-3:] == ["--conf", "device", "cpu"]
