"""Neural collaborative filtering trained by the neural trainer: BPR-MF, LightGCN."""
