"""Intensity transforms: the CT window (Hounsfield units clipped and scaled)."""
