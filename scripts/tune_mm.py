"""Equal validation budgets on a warm multimodal protocol (results/mm_ml100k/tuned/, results/mm_ml1m/tuned/):
fusion_rec without content and with late, graph and attention fusion of text+image, VBPR, and FREEDOM with and
without its modalities, each searched with the same number of trials.

    MMBENCH_DATA_DIR=../shared/data MMBENCH_WORK_DIR=/tmp/mmtune2 python scripts/tune_mm.py [STUDY ...]
    python scripts/tune_mm.py --experiment mm_ml1m --trials 12 none vbpr   # ML-1M-MM
    python scripts/tune_mm.py --max-epochs 1000 --patience 20 --prune-after 50 none vbpr   # longer training
    python scripts/tune_mm.py --print        # the mmbench commands, without running them

Each study is one ``mmbench`` Optuna multirun (``hparams_search=<model>_optuna``, conf/hparams_search/), ``--trials``
trials (default 12): trial 0 is the model's config defaults (enqueued), then TPE; pruned from the validation loop;
the best configuration is retrained with seeds 0 1 2 and tested once (trials never read test). Studies run one after
another, in the order given (default: all). With the defaults (``--experiment mm_ml100k --trials 12``) the commands
are exactly those of the former ``scripts/tune_mm_ml100k.sh`` that made results/mm_ml100k/tuned/. ``--max-epochs``,
``--patience`` and ``--prune-after`` override the experiment's epoch cap, its early-stopping patience and the median
pruner's warm-up (epochs before a trial can be pruned) for every trial and final run: the experiment's 100 epochs and
pruning from the third epoch cut off models whose best validation epoch comes later (results/peers_mmrec: BPR and
VBPR at lr 0.001 peak past epoch 170). Use another ``MMBENCH_WORK_DIR`` for such a study: Optuna resumes a study of
the same name in the same store. The table afterwards::

    mmbench-table tuned --experiment mm_ml100k_lite0 --tracking-uri sqlite:///$MMBENCH_WORK_DIR/mlflow.db \\
      --filter "tags.optuna_final = 'true'" --rows model fusion modalities \\
      --metrics test/recall@20 test/ndcg@20 test/sparse/ndcg@20 --baseline "fusion_rec / - / none" \\
      --costs time/fit_s model/n_params seeds --results-dir results/mm_ml100k --markdown tables.md --no-plots
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys

EXPERIMENTS = ("mm_ml100k", "mm_ml1m")
FUSION_REC = (
    "hparams_search=fusion_rec_optuna",
    "+tags.model=fusion_rec",
    "hydra.sweeper.enqueue_trials=[{model.embedding_dim:64,model.reg:1e-05,model.optimizer.lr:0.005}]",
)
TEXT_IMAGE = ("model.modalities=[text,image]", "+tags.modalities='text+image'")
FREEDOM = (
    "hparams_search=freedom_optuna",
    "+tags.model=freedom",
    "+tags.fusion='-'",
)
FREEDOM_DEFAULTS = (
    "hydra.sweeper.enqueue_trials=[{model.k:10,model.dropout:0.8,model.reg_weight:1e-04,model.optimizer.lr:0.001}]"
)


def fusion_rec(fusion: str) -> tuple[str, ...]:
    """fusion_rec with ``fusion`` of text+image."""
    return (
        *FUSION_REC,
        f"fusion@model.fusion={fusion}",
        *TEXT_IMAGE,
        f"+tags.fusion={fusion}",
        f"hydra.sweeper.study_name=fusion_rec-{fusion}",
    )


# study -> its overrides, after the common ones of :func:`command`
STUDIES: dict[str, tuple[str, ...]] = {
    "none": (
        *FUSION_REC,
        "model.modalities=[]",
        "+tags.fusion='-'",
        "+tags.modalities=none",
        "hydra.sweeper.study_name=fusion_rec-none",
    ),
    "late": fusion_rec("late"),
    "graph": fusion_rec("graph"),
    "attention": fusion_rec("attention"),
    "vbpr": (
        "hparams_search=vbpr_optuna",
        "+tags.model=vbpr",
        "+tags.fusion='-'",
        *TEXT_IMAGE,
        "hydra.sweeper.enqueue_trials=[{model.embedding_dim:32,model.content_dim:32,model.reg:1e-04,model.optimizer.lr:0.005}]",
        "hydra.sweeper.study_name=vbpr",
    ),
    "freedom": (*FREEDOM, *TEXT_IMAGE, FREEDOM_DEFAULTS, "hydra.sweeper.study_name=freedom"),
    # FREEDOM's own no-content counterpart (its user-item graph part alone), searched with the same budget
    "freedom_none": (
        *FREEDOM,
        "model.modalities=[]",
        "+tags.modalities=none",
        FREEDOM_DEFAULTS,
        "hydra.sweeper.study_name=freedom-none",
    ),
}


def command(
    study: str,
    experiment: str = "mm_ml100k",
    trials: int = 12,
    max_epochs: int | None = None,
    patience: int | None = None,
    prune_after: int | None = None,
) -> list[str]:
    """The ``mmbench`` command line of ``study`` on ``experiment``'s warm protocol with ``trials`` trials; the
    training budget of the experiment unless ``max_epochs``, ``patience`` or ``prune_after`` are given."""
    common = [f"experiment={experiment}", f"hydra.sweeper.n_trials={trials}", "trainer.enable_progress_bar=false"]
    budget = [
        f"{key}={value}"
        for key, value in (
            ("trainer.max_epochs", max_epochs),
            ("callbacks.early_stopping.patience", patience),
            ("hydra.sweeper.pruner.n_warmup_steps", prune_after),
        )
        if value is not None
    ]
    return ["mmbench", *common, "+tags.protocol=warm", *STUDIES[study], *budget]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("studies", nargs="*", metavar="STUDY", help=f"default: all of {' '.join(STUDIES)}")
    ap.add_argument("--experiment", default="mm_ml100k", choices=EXPERIMENTS, help="conf/experiment (its split, data)")
    ap.add_argument("--trials", type=int, default=12, help="trials per study (the same for every study)")
    ap.add_argument("--max-epochs", type=int, help="epoch cap of every trial and final run (default: the experiment's)")
    ap.add_argument("--patience", type=int, help="early-stopping patience in epochs (default: the experiment's)")
    ap.add_argument("--prune-after", type=int, help="epochs before the median pruner may stop a trial (default: 2)")
    ap.add_argument("--print", action="store_true", help="print the commands instead of running them")
    a = ap.parse_args(argv)
    unknown = [s for s in a.studies if s not in STUDIES]
    if unknown:
        ap.error(f"unknown study {', '.join(unknown)}: choose from {' '.join(STUDIES)}")
    if a.trials < 1:
        ap.error(f"--trials {a.trials}: need at least 1 (trial 0 is the model's defaults)")
    for flag, value, least in (
        ("--max-epochs", a.max_epochs, 1),
        ("--patience", a.patience, 1),
        ("--prune-after", a.prune_after, 0),
    ):
        if value is not None and value < least:
            ap.error(f"{flag} {value}: need at least {least}")
    mmbench = shutil.which("mmbench")
    if mmbench is None and not a.print:
        print("tune_mm: no mmbench on PATH (pip install -e . in this environment)", file=sys.stderr)
        return 2
    for name in a.studies or list(STUDIES):
        cmd = command(name, a.experiment, a.trials, a.max_epochs, a.patience, a.prune_after)
        print(shlex.join(cmd), flush=True)
        if not a.print:
            subprocess.run([mmbench, *cmd[1:]], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
