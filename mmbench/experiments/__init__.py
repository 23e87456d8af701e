"""Multi-run experiments that are more than one Hydra grid (see each module)."""
