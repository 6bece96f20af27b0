"""inferers of seq_models."""
