"""Sequence models on MONAI: GRU regression (batch and streaming), the RNN primer models, IAM4VP cloudcasting.

Public names are imported lazily (``from seq_models import IAM4VP`` only loads the IAM4VP code).
"""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names, names_by_module

_LAZY: dict[str, str] = names_by_module(
    {
        # GRU regression (seed 000)
        "seq_models.networks.gru_regression": (
            "PaddedGRURegressor", "SingleStepGRURegressor", "PaddedLSTMRegression", "SingleStepLSTMRegression",
            "gru_regressor_small", "gru_regressor_large", "FoldedGRUStep",
        ),
        "seq_models.inferers.streaming": ("GRUStreamingInferer",),
        "seq_models.inferers.sliding_window": ("TimeSlidingWindowInferer",),
        # RNN primer (seed 001)
        "seq_models.networks.rnn": ("VanillaRNN", "VanillaRNNCombined", "DeepVanillaRNN", "LSTMModel", "GRUModel"),
        "seq_models.data.windows": ("RegularDataset", "SequentialDataset", "SlidingWindowDataset"),
        # IAM4VP (seed 003)
        "seq_models.networks.iam4vp": ("IAM4VP",),
    }
)  # fmt: skip

__all__ = sorted(_LAZY)


__getattr__ = lazy_names(__name__, _LAZY)
