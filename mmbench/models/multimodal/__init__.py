"""Models that read item (and user) features: FusionRec, VBPR, FREEDOM, the seed CNN+LSTM models."""
