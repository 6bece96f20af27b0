"""Sequence models on MONAI: GRU regression (batch and streaming), the RNN primer models, IAM4VP cloudcasting.

Public names are imported lazily (``from seq_models import IAM4VP`` only loads the IAM4VP code).
"""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names

_LAZY: dict[str, str] = {
    # GRU regression (seed 000)
    "PaddedGRURegressor": "seq_models.networks.gru_regression",
    "SingleStepGRURegressor": "seq_models.networks.gru_regression",
    "PaddedLSTMRegression": "seq_models.networks.gru_regression",
    "SingleStepLSTMRegression": "seq_models.networks.gru_regression",
    "gru_regressor_small": "seq_models.networks.gru_regression",
    "gru_regressor_large": "seq_models.networks.gru_regression",
    "FoldedGRUStep": "seq_models.networks.gru_regression",
    "GRUStreamingInferer": "seq_models.inferers.streaming",
    "TimeSlidingWindowInferer": "seq_models.inferers.sliding_window",
    # RNN primer (seed 001)
    "VanillaRNN": "seq_models.networks.rnn",
    "VanillaRNNCombined": "seq_models.networks.rnn",
    "DeepVanillaRNN": "seq_models.networks.rnn",
    "LSTMModel": "seq_models.networks.rnn",
    "GRUModel": "seq_models.networks.rnn",
    "RegularDataset": "seq_models.data.windows",
    "SequentialDataset": "seq_models.data.windows",
    "SlidingWindowDataset": "seq_models.data.windows",
    # IAM4VP (seed 003)
    "IAM4VP": "seq_models.networks.iam4vp",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_names(__name__, _LAZY)
