"""Top-N models fitted in closed form or vectorised code: popularity, random, item/user k-NN, EASE, WMF."""
