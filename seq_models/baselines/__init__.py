"""baselines of seq_models."""
