"""Training targets from a label map: per-structure masks, presence and attention targets, and their keys."""
