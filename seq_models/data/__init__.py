"""data of seq_models."""
