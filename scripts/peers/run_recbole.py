"""Run one RecBole 1.2.1 model on a split exported by scripts/compare_recbole.py; runs in the peers' environment
(scripts/peers/setup.sh), not mmbench's, and imports nothing from mmbench.

    <peers venv>/bin/python scripts/peers/run_recbole.py JOB.json

JOB.json: ``data_path`` (the folder holding ``<dataset>/<dataset>.{train,valid,test}.inter``), ``dataset``,
``model`` (RecBole's class name), ``config`` (RecBole settings over its own defaults: {} = its published defaults),
``seed``, ``threads``, ``out``. RecBole trains with its own trainer (early stopping on its ``valid_metric``), restores
its best checkpoint, evaluates test with its own evaluator, then the runner writes into ``out`` the restored model's
full score matrix (``scores.npy``, rows ``users.txt``, columns ``items.txt``: RecBole's tokens, i.e. the exported
raw ids; the padding id 0 left out) and ``result.json``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

# RecBole 1.2.1 restores its best checkpoint (its own file, holding its config) with torch.load's old default;
# torch >= 2.6 loads weights only unless told otherwise
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import numpy as np  # noqa: E402
import recbole
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.data.interaction import Interaction
from recbole.utils import get_model, get_trainer, init_logger, init_seed


def full_scores(model: torch.nn.Module, uid_field: str, n_users: int, n_items: int, batch: int = 256) -> np.ndarray:
    """Scores of users 1..n_users-1 (RecBole's internal ids; 0 is padding) for items 1..n_items-1."""
    model.eval()
    rows = []
    with torch.no_grad():
        for start in range(1, n_users, batch):
            users = torch.arange(start, min(start + batch, n_users))
            s = model.full_sort_predict(Interaction({uid_field: users}))
            rows.append(torch.as_tensor(s).reshape(len(users), n_items)[:, 1:].float().cpu().numpy())
    return np.concatenate(rows)


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    out = Path(job["out"])
    torch.set_num_threads(int(job["threads"]))
    settings = {
        "data_path": job["data_path"],
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]},
        "checkpoint_dir": str(out / "saved"),
        "seed": int(job["seed"]),
        "use_gpu": False,
        "show_progress": False,
        "topk": [10, 20],
        "metrics": ["Recall", "NDCG", "Precision", "Hit", "MRR"],
        "metric_decimal_place": 6,
    } | job["config"]
    config = Config(model=job["model"], dataset=job["dataset"], config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    log = logging.getLogger()
    t0 = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    data_s = time.perf_counter() - t0

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    t = time.perf_counter()
    best_valid, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    eval_s = time.perf_counter() - t
    log.info("test result (RecBole's evaluation): %s", dict(test_result))

    uid, iid = config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]
    n_users, n_items = dataset.num(uid), dataset.num(iid)
    scores = full_scores(trainer.model, uid, n_users, n_items)
    np.save(out / "scores.npy", scores.astype(np.float32))
    (out / "users.txt").write_text("".join(f"{t}\n" for t in dataset.field2id_token[uid][1:]))
    (out / "items.txt").write_text("".join(f"{t}\n" for t in dataset.field2id_token[iid][1:]))
    result = {
        "peer": "RecBole",
        "version": recbole.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "model": job["model"],
        "config": job["config"],
        "settings": {
            k: config[k]
            for k in sorted(
                set(job["config"])
                | {"epochs", "learning_rate", "train_batch_size", "stopping_step", "valid_metric", "seed"}
            )
        },
        "best_valid": float(best_valid) if best_valid is not None else None,
        "best_valid_result": {k: float(v) for k, v in (best_valid_result or {}).items()},
        "test": {k: float(v) for k, v in test_result.items()},
        "epochs": len(trainer.train_loss_dict),
        "data_s": data_s,
        "fit_s": fit_s,
        "eval_test_s": eval_s,
    }
    (out / "result.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
