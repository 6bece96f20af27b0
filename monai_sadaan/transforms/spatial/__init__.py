"""Spatial transforms: a whole volume to the network's grid and back (resize or pad; the CT's bounded-memory path)."""
