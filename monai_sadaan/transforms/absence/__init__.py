"""Absence augmentations: field-of-view cuts and synthetic resections that make structures absent in the image and
the label map."""
