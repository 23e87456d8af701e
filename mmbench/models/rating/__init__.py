"""Rating-prediction models: the Surprise family (baselines, k-NN, Slope One, co-clustering, SVD, SVD++,
NMF) and PMF."""
