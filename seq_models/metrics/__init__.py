"""metrics of seq_models."""
