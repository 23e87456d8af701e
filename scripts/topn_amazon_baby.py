"""Top-N baselines on Amazon Baby (LATTICE split): validation searches, 3-seed finals, table (results/amazon_baby/).

    MMBENCH_DATA_DIR=../shared/data MMBENCH_WORK_DIR=/tmp/baby python scripts/topn_amazon_baby.py [STUDY ...]
    python scripts/topn_amazon_baby.py --print        # the commands, without running them

Each study is one ``mmbench`` Optuna multirun (``experiment=topn_amazon_baby hparams_search=<model>_optuna``):
trial 0 is the model's conf/model defaults (enqueued), then TPE; neural trials are pruned from the validation
loop; every choice is made on validation Recall@20, and the best configuration is retrained with the study's final
seeds (0 1 2; one run for the deterministic ItemKNN and EASE) and tested once. Pop has nothing to choose: one run.
Afterwards ``--table`` writes results/amazon_baby/ from the MLflow store of $MMBENCH_WORK_DIR, and ``--masking``
prints how much masking the validation items at test time (mmbench) instead of only the training items (MMRec's
and LATTICE's code) moves Pop's and the chosen ItemKNN's test metrics.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys

COMMON = ("experiment=topn_amazon_baby",)
# study -> (overrides, number of trials)
STUDIES: dict[str, tuple[tuple[str, ...], int]] = {
    "pop": (("model=pop",), 0),
    "itemknn": (
        ("hparams_search=itemknn_optuna", "hydra.sweeper.enqueue_trials=[{model.k:200,model.shrink:10.0}]"),
        12,
    ),
    "ease": (("hparams_search=ease_optuna", "hydra.sweeper.enqueue_trials=[{model.reg:250.0}]"), 10),
    "wmf": (
        (
            "hparams_search=wmf_optuna",
            "hydra.sweeper.enqueue_trials=[{model.factors:128,model.reg:50.0,model.alpha:5.0,model.iterations:15}]",
        ),
        12,
    ),
    "bpr": (
        (
            "hparams_search=bpr_optuna",
            "hydra.sweeper.enqueue_trials=[{model.embedding_dim:64,model.reg:0.001,model.optimizer.lr:0.001}]",
        ),
        8,
    ),
    "lightgcn": (
        (
            "hparams_search=lightgcn_optuna",
            "hydra.sweeper.enqueue_trials=[{model.n_layers:3,model.reg:0.0001,model.optimizer.lr:0.005}]",
        ),
        6,
    ),
}
METRICS = [f"test/{m}@{k}" for m in ("recall", "ndcg", "precision") for k in (10, 20)]


def command(name: str) -> list[str]:
    """The mmbench command of one study."""
    overrides, n_trials = STUDIES[name]
    searched = [f"hydra.sweeper.n_trials={n_trials}"] if n_trials else []
    return ["mmbench", *COMMON, *overrides, *searched]


def table_command(work_dir: str) -> list[str]:
    """The mmbench-table command over the runs that tested: the studies' finals and Pop (trials never test)."""
    return [
        "mmbench-table",
        "amazon_baby",
        "--experiment",
        "topn_amazon_baby",
        "--tracking-uri",
        f"sqlite:///{work_dir}/mlflow.db",
        "--filter",
        "metrics.`test/recall_at_20` >= 0",  # MLflow spells @ as _at_
        "--rows",
        "model",
        "--metrics",
        *METRICS,
        "--baseline",
        "pop",
        "--costs",
        "time/fit_s",
        "model/n_params",
        "seeds",
        "--markdown",
        "tables.md",
        "--no-plots",
    ]


def summary(work_dir: str) -> list[str]:
    """Each study's budget and choice, from the Optuna store: trial 0 (the defaults) and the best trial."""
    import optuna

    storage = f"sqlite:///{work_dir}/optuna.db"
    lines = [
        "# Validation searches on Amazon Baby (LATTICE split)",
        "",
        f"`python scripts/topn_amazon_baby.py --summary` over the Optuna store {storage} (validation Recall@20).",
        "",
        "| study | trials (complete / pruned / failed) | val R@20 of the defaults | best trial | val R@20 | chosen |",
    ]
    lines.append("|---|---|---|---|---|---|")
    for name in STUDIES:
        if not STUDIES[name][1]:
            continue
        study = optuna.load_study(study_name=f"{name}-lattice", storage=storage)
        n = {s: sum(t.state.name == s for t in study.trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
        best = study.best_trial
        chosen = ", ".join(f"{k.removeprefix('model.')}={v:.3g}" for k, v in best.params.items())
        lines.append(
            f"| {name} | {n['COMPLETE']} / {n['PRUNED']} / {n['FAIL']} | {study.trials[0].value:.4f} | {best.number} | "
            f"{best.value:.4f} | {chosen} |"
        )
    return lines


def masking(work_dir: str) -> list[str]:
    """Test metrics of Pop and of ItemKNN with the study's best (k, shrink), under both test-time maskings."""
    import optuna
    from hydra.utils import instantiate

    from mmbench.config import compose
    from mmbench.splits import load_or_create

    best = optuna.load_study(study_name="itemknn-lattice", storage=f"sqlite:///{work_dir}/optuna.db").best_params
    lines = ["| model | test masks | " + " | ".join(m.removeprefix("test/") for m in METRICS) + " |"]
    lines.append("|---|---|" + "---|" * len(METRICS))
    for name, extra in (("pop", []), ("itemknn", [f"{k}={v}" for k, v in best.items()])):
        cfg = compose(["experiment=topn_amazon_baby", f"model={name}", f"paths.work_dir={work_dir}", *extra])
        ds = instantiate(cfg.preprocess)(instantiate(cfg.dataset).read())
        split = load_or_create(ds, instantiate(cfg.split), cfg.paths.split_dir)
        model = instantiate(cfg.model)
        model.fit(split.train, split.val)
        ev = instantiate(cfg.eval)
        label = name if not extra else f"{name} ({', '.join(extra)})"
        for masks, exclude in (("train + val (mmbench)", [split.train, split.val]), ("train (MMRec)", [split.train])):
            r = ev.evaluate(model, split.test, exclude).means
            lines.append(
                f"| {label} | {masks} | " + " | ".join(f"{r[m.removeprefix('test/')]:.4f}" for m in METRICS) + " |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("studies", nargs="*", metavar="STUDY", help=f"default: all of {' '.join(STUDIES)}")
    ap.add_argument("--print", action="store_true", help="print the commands instead of running them")
    ap.add_argument("--table", action="store_true", help="then write results/amazon_baby/ from the final runs")
    ap.add_argument("--masking", action="store_true", help="then print the test-masking comparison (Pop, ItemKNN)")
    ap.add_argument("--summary", action="store_true", help="then print each study's budget and choice")
    a = ap.parse_args(argv)
    unknown = [s for s in a.studies if s not in STUDIES]
    if unknown:
        ap.error(f"unknown study {', '.join(unknown)}: choose from {' '.join(STUDIES)}")
    work_dir = os.environ.get("MMBENCH_WORK_DIR", os.getcwd())
    cmds = [command(n) for n in a.studies or ([] if a.table or a.masking or a.summary else list(STUDIES))]
    if a.table:
        cmds.append(table_command(work_dir))
    for cmd in cmds:
        print(shlex.join(cmd), flush=True)
        if a.print:
            continue
        exe = shutil.which(cmd[0])
        if exe is None:
            print(f"topn_amazon_baby: no {cmd[0]} on PATH (pip install -e . in this environment)", file=sys.stderr)
            return 2
        subprocess.run([exe, *cmd[1:]], check=True)
    if a.summary and not a.print:
        print("\n".join(summary(work_dir)), flush=True)
    if a.masking and not a.print:
        print("\n".join(masking(work_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
