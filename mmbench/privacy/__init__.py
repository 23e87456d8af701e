"""Privacy of models trained on people's histories: user-level DP-SGD (:mod:`.dp`) and a membership-inference
audit (:mod:`.attack`)."""
