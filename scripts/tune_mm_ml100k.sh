#!/usr/bin/env bash
# Validation searches of fusion_rec on the warm ML-100K-MM protocol (results/mm_ml100k/tuned/): for no content
# and for late, graph and attention fusion of text+image, Optuna with trial 0 = the config defaults (enqueued)
# then 11 TPE trials, pruned from the validation loop; the best configuration is retrained with seeds 0 1 2 and
# tested once. Test is never read by a trial. Run with MMBENCH_DATA_DIR and MMBENCH_WORK_DIR set; then
#   mmbench-table tuned --experiment mm_ml100k --tracking-uri sqlite:///$MMBENCH_WORK_DIR/mlflow.db \
#     --filter "tags.optuna_final = 'true'" --rows model fusion modalities \
#     --metrics test/recall@20 test/ndcg@20 test/sparse/ndcg@20 --baseline "fusion_rec / - / none" \
#     --costs time/fit_s model/n_params seeds --results-dir results/mm_ml100k --markdown tables.md --no-plots
# Usage: scripts/tune_mm_ml100k.sh [none|late|graph|attention ...]   (default: all four, one after another)
set -euo pipefail
default="hydra.sweeper.enqueue_trials=[{model.embedding_dim:64,model.reg:1e-05,model.optimizer.lr:0.005}]"
common=(experiment=mm_ml100k hparams_search=fusion_rec_optuna hydra.sweeper.n_trials=12 "$default"
        trainer.enable_progress_bar=false +tags.protocol=warm +tags.model=fusion_rec)
mm=("model.modalities=[text,image]" "+tags.modalities='text+image'")
for what in "${@:-none late graph attention}"; do
  for f in $what; do
    if [ "$f" = none ]; then
      mmbench "${common[@]}" "model.modalities=[]" "+tags.fusion='-'" +tags.modalities=none \
        hydra.sweeper.study_name=fusion_rec-none
    else
      mmbench "${common[@]}" "fusion@model.fusion=$f" "${mm[@]}" "+tags.fusion=$f" \
        "hydra.sweeper.study_name=fusion_rec-$f"
    fi
  done
done
