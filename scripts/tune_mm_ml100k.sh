#!/usr/bin/env bash
# Validation searches on the warm ML-100K-MM protocol (results/mm_ml100k/tuned/): fusion_rec without content and
# with late, graph and attention fusion of text+image, VBPR and FREEDOM. Optuna, 12 trials per study: trial 0 is
# the model's config defaults (enqueued), then TPE; pruned from the validation loop; the best configuration is
# retrained with seeds 0 1 2 and tested once (trials never read test). Needs MMBENCH_DATA_DIR and
# MMBENCH_WORK_DIR; then the table:
#   mmbench-table tuned --experiment mm_ml100k --tracking-uri sqlite:///$MMBENCH_WORK_DIR/mlflow.db \
#     --filter "tags.optuna_final = 'true'" --rows model fusion modalities \
#     --metrics test/recall@20 test/ndcg@20 test/sparse/ndcg@20 --baseline "fusion_rec / - / none" \
#     --costs time/fit_s model/n_params seeds --results-dir results/mm_ml100k --markdown tables.md --no-plots
# Usage: scripts/tune_mm_ml100k.sh [none late graph attention vbpr freedom]   (default: all, one after another)
set -euo pipefail
common=(experiment=mm_ml100k hydra.sweeper.n_trials=12 trainer.enable_progress_bar=false +tags.protocol=warm)
fr=(hparams_search=fusion_rec_optuna +tags.model=fusion_rec
    "hydra.sweeper.enqueue_trials=[{model.embedding_dim:64,model.reg:1e-05,model.optimizer.lr:0.005}]")
mm=("model.modalities=[text,image]" "+tags.modalities='text+image'")
for f in "${@:-none late graph attention vbpr freedom}"; do
  for name in $f; do
    case "$name" in
      none) mmbench "${common[@]}" "${fr[@]}" "model.modalities=[]" "+tags.fusion='-'" +tags.modalities=none \
              hydra.sweeper.study_name=fusion_rec-none ;;
      late|graph|attention) mmbench "${common[@]}" "${fr[@]}" "fusion@model.fusion=$name" "${mm[@]}" \
              "+tags.fusion=$name" "hydra.sweeper.study_name=fusion_rec-$name" ;;
      vbpr) mmbench "${common[@]}" hparams_search=vbpr_optuna +tags.model=vbpr "+tags.fusion='-'" "${mm[@]}" \
              "hydra.sweeper.enqueue_trials=[{model.embedding_dim:32,model.content_dim:32,model.reg:1e-04,model.optimizer.lr:0.005}]" \
              hydra.sweeper.study_name=vbpr ;;
      freedom) mmbench "${common[@]}" hparams_search=freedom_optuna +tags.model=freedom "+tags.fusion='-'" "${mm[@]}" \
              "hydra.sweeper.enqueue_trials=[{model.k:10,model.dropout:0.8,model.reg_weight:1e-04,model.optimizer.lr:0.001}]" \
              hydra.sweeper.study_name=freedom ;;
      *) echo "unknown study $name: choose from none late graph attention vbpr freedom" >&2; exit 2 ;;
    esac
  done
done
