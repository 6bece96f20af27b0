"""Post-processing: the network's output dict to per-sample keys, presence-aware label maps (on the network's grid
or the input's), and the voxel volume predicted volumes are scored with."""
