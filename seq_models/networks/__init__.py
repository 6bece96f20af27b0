"""networks of seq_models."""
