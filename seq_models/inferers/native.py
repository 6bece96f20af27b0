"""Build and load the native GRU tick (``gru_tick.c``) with the system C compiler; ctypes, no torch headers.

The shared library is compiled once per machine into ``$SEQ_MODELS_CACHE`` (default ``~/.cache/seq_models``),
named by a hash of the source and flags, and written atomically. Without a working compiler
:func:`load_gru_tick_library` returns ``None`` and callers fall back to the PyTorch path.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
from pathlib import Path

import torch

__all__ = ["load_gru_tick_library", "NativeGRUTick", "MAX_LAYERS"]

MAX_LAYERS = 16
_SOURCE = Path(__file__).with_name("gru_tick.c")
_LIB: ctypes.CDLL | None = None
_TRIED = False
logger = logging.getLogger(__name__)


class _Ctx(ctypes.Structure):
    _fields_ = [
        ("num_layers", ctypes.c_int),
        ("hidden", ctypes.c_int),
        ("input", ctypes.c_int),
        ("wi_t", ctypes.c_void_p * MAX_LAYERS),
        ("wh_t", ctypes.c_void_p * MAX_LAYERS),
        ("bi", ctypes.c_void_p * MAX_LAYERS),
        ("bh", ctypes.c_void_p * MAX_LAYERS),
        ("lin_w", ctypes.c_void_p),
        ("lin_b", ctypes.c_void_p),
        ("h", ctypes.c_void_p),
        ("scratch", ctypes.c_void_p),
    ]


def _compile(out: Path, flags: list[str]) -> bool:
    from monai_glue import atomic_write_with

    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return False
    try:
        with atomic_write_with(out) as tmp:
            subprocess.run([cc, *flags, "-shared", "-fPIC", "-o", tmp, str(_SOURCE), "-lm"], check=True,
                           capture_output=True, timeout=120)
        return True
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        logger.info("native GRU tick: compiling with %s %s failed: %s", cc, " ".join(flags), e)
        return False


def load_gru_tick_library() -> ctypes.CDLL | None:
    """The compiled library, building it on first use; ``None`` when no C compiler works here."""
    global _LIB, _TRIED
    if _TRIED:
        return _LIB
    _TRIED = True
    if not _SOURCE.is_file():  # e.g. an install that did not ship the C source
        return None
    cache = Path(os.environ.get("SEQ_MODELS_CACHE", Path.home() / ".cache" / "seq_models"))
    src = _SOURCE.read_bytes()
    for flags in (["-O3", "-march=native"], ["-O3"]):
        tag = hashlib.sha256(src + " ".join(flags).encode() + platform.machine().encode() + platform.node().encode())
        lib_path = cache / f"gru_tick_{tag.hexdigest()[:16]}.so"
        if not lib_path.is_file() and not _compile(lib_path, flags):
            continue
        try:
            lib = ctypes.CDLL(str(lib_path))
        except OSError as e:
            logger.info("native GRU tick: loading %s failed: %s", lib_path, e)
            continue
        lib.gru_tick.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.gru_tick.restype = ctypes.c_int
        _LIB = lib
        return lib
    return None


class NativeGRUTick:
    """Batch-1 GRU tick over preallocated float32 CPU tensors through the native library.

    Args:
        w_ih: per layer [3H, in_l] input weights (layer 0 already folded with the batch norm), gate order r, z, n.
        w_hh: per layer [3H, H].
        b_ih, b_hh: per layer [3H].
        lin_w: [1, H]; lin_b: [1].
        h: [L, 1, H] contiguous float32 state, updated in place.

    Raises:
        RuntimeError: the library could not be built or loaded.
    """

    def __init__(
        self,
        w_ih: list[torch.Tensor],
        w_hh: list[torch.Tensor],
        b_ih: list[torch.Tensor],
        b_hh: list[torch.Tensor],
        lin_w: torch.Tensor,
        lin_b: torch.Tensor,
        h: torch.Tensor,
    ) -> None:
        lib = load_gru_tick_library()
        if lib is None:
            raise RuntimeError("expected a working C compiler to build the native GRU tick, got none")
        num_layers = len(w_ih)
        if not 1 <= num_layers <= MAX_LAYERS:
            raise ValueError(f"expected 1..{MAX_LAYERS} layers, got {num_layers}")
        if h.dtype != torch.float32 or h.device.type != "cpu" or not h.is_contiguous():
            raise ValueError("expected a contiguous float32 CPU hidden state")
        hidden = int(w_hh[0].shape[1])
        f32 = dict(dtype=torch.float32, device="cpu")
        self._keep = {
            "wi_t": [w.detach().t().contiguous().to(**f32) for w in w_ih],
            "wh_t": [w.detach().t().contiguous().to(**f32) for w in w_hh],
            "bi": [b.detach().contiguous().to(**f32) for b in b_ih],
            "bh": [b.detach().contiguous().to(**f32) for b in b_hh],
            "lin_w": lin_w.detach().reshape(-1).contiguous().to(**f32),
            "lin_b": lin_b.detach().reshape(-1).contiguous().to(**f32),
            "scratch": torch.zeros(6 * hidden, **f32),
        }
        ctx = _Ctx()
        ctx.num_layers, ctx.hidden, ctx.input = num_layers, hidden, int(w_ih[0].shape[1])
        for i in range(num_layers):
            ctx.wi_t[i] = self._keep["wi_t"][i].data_ptr()
            ctx.wh_t[i] = self._keep["wh_t"][i].data_ptr()
            ctx.bi[i] = self._keep["bi"][i].data_ptr()
            ctx.bh[i] = self._keep["bh"][i].data_ptr()
        ctx.lin_w = self._keep["lin_w"].data_ptr()
        ctx.lin_b = self._keep["lin_b"].data_ptr()
        ctx.h = h.data_ptr()
        ctx.scratch = self._keep["scratch"].data_ptr()
        self._h = h  # keep the state tensor alive
        self._ctx = ctx
        self._ctx_ptr = ctypes.addressof(ctx)
        self._fn = lib.gru_tick

    def __call__(self, x_ptr: int, y_ptr: int) -> int:
        """Run one tick from the float32 [F] at ``x_ptr`` into the float at ``y_ptr``; returns the C status."""
        return self._fn(self._ctx_ptr, x_ptr, y_ptr)
