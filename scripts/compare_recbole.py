"""mmbench beside RecBole 1.2.1 on one split: BPR, LightGCN, EASE, ItemKNN, MultiVAE and MultDAE.

The split is mmbench's saved split of ``--experiment`` (default ``topn_ml100k``: ML-100K, per-user random
80/10/10, seed 0, every rating positive), exported as RecBole atomic files with its benchmark-file split
(``<out>/data/ml100k/ml100k.{train,valid,test}.inter``, raw ids as tokens). Every model runs on it:

- mmbench: an ordinary run (``mmbench experiment=<experiment> model=<name>``: conf/model defaults, early stopping
  on validation, test once), one torch thread;
- RecBole, in the peers' environment (scripts/peers/setup.sh) through scripts/peers/run_recbole.py, one torch
  thread, twice: ``defaults`` (RecBole's published model and training defaults: only the data, the metrics and
  the seed are set) and ``mmbench`` (mmbench's hyperparameters translated, :data:`SAME`).

RecBole's best checkpoint scores every (user, item); mmbench's evaluator ranks those scores with mmbench's protocol
(full ranking, training and validation items masked, ties by mmbench's seeded order), so every row of the table
is measured by one evaluator. RecBole's own test NDCG@20 is printed beside it as a check (its protocol masks the
same items; only its tie order differs). Times: mmbench's fit (``time/fit_s``) and the whole run; RecBole's
``trainer.fit`` and the whole subprocess (interpreter start, data loading, fit, its evaluation, score export).

    MMBENCH_DATA_DIR=../shared/data python scripts/compare_recbole.py --peer-python ../mmbench-peers/venv/bin/python
    ... [--models bpr lightgcn] [--profiles defaults mmbench] [--epochs 2]  (--epochs: a plumbing check only)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mmbench.config import compose  # noqa: E402
from scripts.peers.common import (  # noqa: E402
    PEER_COLUMNS,
    check_peer_models,
    evaluate_peer,
    export_recbole,
    import_scores,
    metrics,
    mmbench_overrides,
    mmbench_row,
    mmbench_split,
    peer_arguments,
    print_results,
    run_mmbench,
    run_peer,
    table,
)

METRIC_NAMES = {"ndcg": "NDCG", "recall": "Recall", "precision": "Precision", "hit": "Hit", "mrr": "MRR", "map": "MAP"}
RUNNER = ROOT / "scripts" / "peers" / "run_recbole.py"
PEER_CLASS = {
    "bpr": "BPR",
    "lightgcn": "LightGCN",
    "ease": "EASE",
    "itemknn": "ItemKNN",
    "multivae": "MultiVAE",
    "multdae": "MultiDAE",
}


def training(cfg: DictConfig) -> dict:
    """mmbench's neural training settings in RecBole's terms: batch, epoch cap, patience, the monitored metric."""
    metric, k = str(cfg.trainer.monitor).split("@")
    return {
        "train_batch_size": int(cfg.trainer.batch_size),
        "epochs": int(cfg.trainer.max_epochs),
        "stopping_step": int(cfg.callbacks.early_stopping.patience),
        "valid_metric": f"{METRIC_NAMES[metric]}@{k}",
        "learner": "adam",
    }


def same_bpr(cfg: DictConfig) -> dict:
    # RecBole's BPR has no regularisation term: mmbench's `reg` has no counterpart (weight_decay stays 0)
    m = cfg.model
    return training(cfg) | {"embedding_size": int(m.embedding_dim), "learning_rate": float(m.optimizer.lr)}


def same_lightgcn(cfg: DictConfig) -> dict:
    # require_pow: RecBole's EmbLoss as sum of squared norms / batch / 2 on the layer-0 embeddings, mmbench's form
    m = cfg.model
    return training(cfg) | {
        "embedding_size": int(m.embedding_dim),
        "n_layers": int(m.n_layers),
        "reg_weight": float(m.reg),
        "require_pow": True,
        "learning_rate": float(m.optimizer.lr),
    }


def same_ease(cfg: DictConfig) -> dict:
    return {"reg_weight": float(cfg.model.reg)}


def same_itemknn(cfg: DictConfig) -> dict:
    return {"k": int(cfg.model.k), "shrink": float(cfg.model.shrink)}


def same_multivae(cfg: DictConfig) -> dict:
    # encoder_dims [600, 200] = RecBole's mlp_hidden_size [600] + latent_dimension 400: RecBole's latent_dimension is
    # the encoder's output, split into mu and logvar (latent 200 = 400 / 2). Not translatable: the batch (mmbench
    # draws `users_per_batch` users, RecBole's train_batch_size counts its data loader's rows) and RecBole's fixed
    # eps ~ N(0, 0.01^2) (mmbench's model.sample_std=0.01 is RecBole's; mmbench's default 1 is the paper's)
    m = cfg.model
    dims = [int(d) for d in m.encoder_dims]
    return training(cfg) | {
        "mlp_hidden_size": dims[:-1],
        "latent_dimension": 2 * dims[-1],
        "dropout_prob": float(m.dropout),
        "anneal_cap": float(m.beta_max),
        "total_anneal_steps": int(m.total_anneal_steps),
        "learning_rate": float(m.optimizer.lr),
    }


def same_multdae(cfg: DictConfig) -> dict:
    # encoder_dims [600, 200] = mlp_hidden_size [600] + latent_dimension 200 (tanh after every layer but the last on
    # both sides); mmbench's reg * sum ||W||^2 is Adam's weight_decay 2 * reg (the same gradient), which RecBole
    # also applies to the biases. The batch is not translated (as for MultiVAE)
    m = cfg.model
    dims = [int(d) for d in m.encoder_dims]
    return training(cfg) | {
        "mlp_hidden_size": dims[:-1],
        "latent_dimension": dims[-1],
        "dropout_prob": float(m.dropout),
        "weight_decay": 2 * float(m.reg),
        "learning_rate": float(m.optimizer.lr),
    }


# mmbench's hyperparameters in RecBole's terms, per mmbench model
SAME: dict[str, Callable[[DictConfig], dict]] = {
    "bpr": same_bpr,
    "lightgcn": same_lightgcn,
    "ease": same_ease,
    "itemknn": same_itemknn,
    "multivae": same_multivae,
    "multdae": same_multdae,
}
MODELS = list(SAME)


def check_models(models: list[str], profiles: list[str]) -> None:
    """Fail before any work on a model mmbench or this script cannot run yet."""
    check_peer_models(models, profiles, "RecBole", PEER_CLASS, SAME, ROOT)


def main() -> None:
    ap = peer_arguments(
        __doc__.split("\n")[0], MODELS, "topn_ml100k", "splits/peers_recbole", seed_help="both sides' seed"
    )
    a = ap.parse_args()
    check_models(a.models, a.profiles)
    out = Path(a.out).resolve()
    base = mmbench_overrides(a)
    run_seeds = a.seeds or [a.seed]
    cfg0 = compose([*base, f"seed={run_seeds[0]}", f"model={a.models[0]}"])
    ds, split = mmbench_split(cfg0)
    name = ds.name
    export_recbole(ds, split, out / "data", name)
    ev = instantiate(cfg0.eval)
    print(
        f"split {split.fingerprint[:16]}: {len(split.train)} / {len(split.val)} / {len(split.test)} events, "
        f"exported to {out / 'data' / name}",
        flush=True,
    )

    rows = []
    for m in a.models:
        for seed in run_seeds:
            cfg = compose([*base, f"seed={seed}", f"model={m}"])
            rows.append(mmbench_row(run_mmbench(cfg), m, seed, split))
            print(table(rows[-1:], PEER_COLUMNS), flush=True)
            for profile in a.profiles:
                conf = {} if profile == "defaults" else SAME[m](cfg)
                if a.epochs is not None:
                    conf["epochs"] = a.epochs
                job = {
                    "data_path": str(out / "data"),
                    "dataset": name,
                    "model": PEER_CLASS[m],
                    "config": conf,
                    "seed": seed,
                    "threads": 1,
                    "out": str(out / "runs" / (f"{m}-{profile}" + ("" if a.seeds is None else f"-seed{seed}"))),
                }
                res = run_peer(a.peer_python, RUNNER, job, Path(job["out"]))
                scores = import_scores(Path(job["out"]), ds.user_ids, ds.item_ids)
                ev_res = evaluate_peer(scores, split, ev)
                row = {"model": m, "side": f"RecBole {res['version']}", "settings": profile, "seed": seed}
                row |= metrics(ev_res.means, "")
                row |= {"n_users": ev_res.n_users, "peer_ndcg@20": res["test"].get("ndcg@20"), "epochs": res["epochs"]}
                rows.append(row | {"fit_s": res["fit_s"], "wall_s": res["wall_s"]})
                print(table(rows[-1:], PEER_COLUMNS), flush=True)
                print(f"  RecBole settings: {json.dumps(res['settings'])}", flush=True)
                print(
                    "  protocol check (mmbench's evaluation of RecBole's scores / RecBole's own): "
                    + ", ".join(
                        f"{k} {ev_res.means[k]:.6f} / {res['test'][k]:.6f}" for k in ("ndcg@20", "recall@20", "ndcg@10")
                    ),
                    flush=True,
                )
    header = f"split {split.fingerprint}; every metric by mmbench's evaluator; peer_ndcg@20 = RecBole's own evaluation"
    print_results(rows, PEER_COLUMNS, header, a.seeds)


if __name__ == "__main__":
    main()
