"""One benchmark run: config -> data -> split -> model -> validation -> test (once) -> MLflow."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import mmbench
from mmbench.config import ConfigError, chosen_option, flatten, import_target, validate
from mmbench.data.interactions import Dataset, Interactions
from mmbench.data.readers import file_sha256
from mmbench.data.train_content import content_for_training
from mmbench.encoders import ModalityFeatures, build_features, build_user_features
from mmbench.evaluation.evaluator import EvalResult, Evaluator, group_means
from mmbench.evaluation.explain import Explainer
from mmbench.evaluation.metrics import metric_key
from mmbench.models.base import Capabilities, Recommender
from mmbench.privacy.attack import MembershipInference
from mmbench.privacy.dp import UserLevelDP
from mmbench.splits import Split, Splitter, load_or_create
from mmbench.tracking import Tracker
from mmbench.tracking.base import DataPart
from mmbench.tracking.null_tracker import NullTracker
from mmbench.tracking.recommender_model import TopK, topk_frame
from mmbench.training.costs import FitMeter, flop_costs
from mmbench.training.distributed import RankGroup, launched_rank, mark_ready, processes

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced: metrics by key (``val/…``, ``test/…``, ``time/…``) and where it was logged."""

    metrics: dict[str, float]
    run_id: str
    artifact_uri: str
    split: Split


# In-process reuse of the data stage across the jobs of one process (a Hydra multirun, a test session): the
# preprocessed dataset keyed by its resolved config and checked against its files' SHA-256, the split by its
# fingerprint. Every job gets its own copy of the arrays and tables (a model or encoder that modified them in
# place could otherwise change a later job's result); only the frozen item / user content objects are shared.
_DATASETS: dict[str, Dataset] = {}
_SPLITS: dict[tuple[str, str], Split] = {}


def _data_files(ds: Dataset) -> dict[str, Path] | None:
    """The files the loader read (``ds.files``, under ``ds.source``), or None where one cannot be found there (such a
    dataset is not reused). A dataset that read no file (the synthetic one) is determined by its config alone."""
    if not ds.files:
        return {} if ds.source is None else None
    paths = {name: Path(ds.source) / name for name in ds.files} if ds.source is not None else {}
    return paths if paths and all(p.is_file() for p in paths.values()) else None


# Per file, the stat stamp (size, mtime, ctime, inode, device) taken before the SHA-256 that verified it: a later
# reuse whose stamp is the same skips hashing. Any write changes the ctime (which no user call can set back), and only
# stamps whose ctime and mtime are older than _SETTLE_NS are kept, so a write in the same clock tick as the one before
# the stamp cannot go unseen: each file is hashed once per process, and again only when it changed.
_VERIFIED: dict[Path, tuple[tuple[int, ...], str]] = {}
_SETTLE_NS = 2_000_000_000
_now_ns = time.time_ns


def _stamp(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _file_unchanged(path: Path, digest: str) -> bool:
    """Whether ``path`` still has the SHA-256 ``digest``: by its stat stamp when it was verified before in this
    process with the same stamp, else by hashing it (then its stamp is remembered, once settled)."""
    stamp = _stamp(path)
    if _VERIFIED.get(path) == (stamp, digest):
        return True
    if file_sha256(path) != digest:
        return False
    if max(stamp[1], stamp[2]) < _now_ns() - _SETTLE_NS:
        _VERIFIED[path] = (stamp, digest)
    return True


def _files_unchanged(ds: Dataset) -> bool:
    """Whether every file ``ds`` was read from still has the SHA-256 recorded when it was read."""
    paths = _data_files(ds)
    return paths is not None and all(_file_unchanged(paths[name], digest) for name, digest in ds.files.items())


def _own_interactions(inter: Interactions) -> Interactions:
    return Interactions(
        inter.users.copy(),
        inter.items.copy(),
        inter.ratings.copy(),
        inter.timestamps.copy(),
        inter.n_users,
        inter.n_items,
    )


def _own_dataset(ds: Dataset) -> Dataset:
    return dataclasses.replace(
        ds,
        interactions=_own_interactions(ds.interactions),
        user_ids=ds.user_ids.copy(),
        item_ids=ds.item_ids.copy(),
        user_table=ds.user_table.copy(),
        item_table=ds.item_table.copy(),
        content=dict(ds.content),
        user_content=dict(ds.user_content),
        files=dict(ds.files),
        published_split=None if ds.published_split is None else ds.published_split.copy(),
    )


def _own_split(split: Split) -> Split:
    return dataclasses.replace(
        split,
        train=_own_interactions(split.train),
        val=_own_interactions(split.val),
        test=_own_interactions(split.test),
        groups={g: u.copy() for g, u in split.groups.items()},
    )


def load_data(cfg: DictConfig) -> tuple[Dataset, Split]:
    """The data stage: ``cfg.dataset`` read and ``cfg.preprocess``ed, then split by ``cfg.split`` (saved under
    ``paths.split_dir``, or read back from there). Reused within the process when the resolved dataset and
    preprocess config are the same and the files are unchanged (SHA-256, hashed again only when a file's stat stamp
    changed: :func:`_file_unchanged`), and the split fingerprint is the same."""
    key = json.dumps(
        [OmegaConf.to_container(cfg.dataset, resolve=True), OmegaConf.to_container(cfg.preprocess, resolve=True)],
        sort_keys=True,
        default=str,
    )
    cached = _DATASETS.get(key)
    if cached is None or not _files_unchanged(cached):
        _DATASETS.pop(key, None)
        cached = instantiate(cfg.preprocess)(instantiate(cfg.dataset).read())
        if _data_files(cached) is not None:  # the loader has just hashed them
            _DATASETS[key] = cached
    ds = _own_dataset(cached)
    splitter: Splitter = instantiate(cfg.split)
    skey = (splitter.fingerprint(ds), str(Path(cfg.paths.split_dir).expanduser().resolve()))
    split = _SPLITS.get(skey)
    if split is None or not (split.directory / "split.json").is_file():
        split = _SPLITS[skey] = load_or_create(ds, splitter, cfg.paths.split_dir)
    else:
        log.info("reusing split %s read earlier in this process", skey[0][:16])
    return ds, _own_split(split)


@functools.cache
def git_commit() -> str:
    """The commit of the code this process runs (``-dirty`` with uncommitted changes), asked once per process: the
    jobs of a multirun run the code that was imported at its start."""
    root = Path(mmbench.__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stdout.strip() + ("-dirty" if dirty else "")) if out.returncode == 0 else "unknown"


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators as ``pytorch_lightning.seed_everything(seed)`` does
    (same calls, same environment variables), without importing Lightning (seconds) in runs that train nothing."""
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PL_SEED_WORKERS"] = "0"


def sweep_tags() -> dict[str, str]:
    """``sweep_id`` (the multirun folder) and ``job_num`` when run inside a Hydra multirun; else nothing."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {}
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return {}
    return {"sweep_id": str(Path(hc.sweep.dir).resolve()), "job_num": str(hc.job.num)}


def model_name(cfg: DictConfig) -> str:
    """The ``model`` config option that was chosen (``conf/model/<name>.yaml``), i.e. ``cfg.model_name``: Hydra's
    runtime choice in CLI runs, recorded by :func:`mmbench.config.compose` elsewhere; never the class name."""
    if OmegaConf.is_interpolation(cfg, "model_name"):
        chosen_option("model")  # outside a Hydra run: a ConfigError saying how to compose
    return str(cfg.model_name)


def privacy_stage(
    cfg: DictConfig, capabilities: Capabilities | None
) -> tuple[UserLevelDP | None, MembershipInference | None]:
    """``cfg.privacy``: user-level DP-SGD (``privacy=dp``, with the attack) and / or the membership-inference attack
    (``privacy=audit``), or neither. ``privacy=dp`` for a model class that does not declare ``user_level_dp`` fails
    here, before any data is read."""
    if not cfg.get("privacy"):
        return None, None
    built = instantiate(cfg.privacy)
    if isinstance(built, MembershipInference):
        return None, built
    if not isinstance(built, UserLevelDP):
        raise ValueError(f"privacy: {cfg.privacy._target_} is neither UserLevelDP nor MembershipInference")
    if capabilities is None or not capabilities.user_level_dp:
        raise ValueError(
            f"privacy=dp: model={model_name(cfg)} ({cfg.model._target_}) is not trained by user-level DP-SGD; "
            "supported: bpr, fusion_rec, vbpr (models whose loss over one user's events reads no other user's data)"
        )
    if processes(cfg.trainer.devices, cfg.trainer.accelerator, cfg.trainer.strategy) > 1:
        raise ValueError(
            f"privacy=dp trains on one process (its accountant counts one process's sampling and noise): "
            f"trainer.devices={cfg.trainer.devices}; use 1"
        )
    return built, MembershipInference()


def fit(
    model: Recommender,
    split: Split,
    cfg: DictConfig,
    evaluator: Evaluator,
    tracker: Tracker,
    workdir: Path,
    privacy: UserLevelDP | None = None,
) -> dict[str, float]:
    """Fit on train (val for early stopping only); returns fit facts to log. Neural models (``capabilities.neural``)
    are trained by the run's ``trainer``, the others by their own ``fit``; with ``privacy``, by user-level DP-SGD
    (then also what it spent, ``privacy/epsilon`` ...). With ``trainer.devices`` > 1 the other DDP ranks are started
    here (:func:`run_rank` in new processes, given the resolved config) and joined for training; in those ranks this
    only trains."""
    if model.capabilities.neural:
        cb = cfg.callbacks  # conf/callbacks: partial Lightning callbacks the trainer completes
        trainer = instantiate(
            cfg.trainer,
            checkpoint_dir=str(workdir / "checkpoints"),
            early_stopping=cb.early_stopping,
            checkpoint=cb.model_checkpoint,
        )
        rank = launched_rank()
        callbacks = []
        if cfg.trial.number is not None and cb.optuna_pruning is not None:  # a trial: report, maybe get pruned
            from mmbench.search import load_trial

            trial = None if rank else load_trial(cfg.trial.study_name, cfg.trial.storage, int(cfg.trial.number))
            callbacks.append(instantiate(cb.optuna_pruning)(trial, metric_key(f"val/{cfg.trainer.monitor}")))
        args = (model, split.train, split.val, evaluator, tracker.lightning_logger(), callbacks, privacy)
        world = processes(cfg.trainer.devices, cfg.trainer.accelerator, cfg.trainer.strategy)
        if world > 1 and rank is None:  # rank 0 of a new group: start the others, train with them
            root = str(Path(mmbench.__file__).resolve().parents[1])  # the others import this very code
            env = {"PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
            command = [sys.executable, "-c", "from mmbench.pipeline import run_rank; run_rank()"]
            with RankGroup(world, command, {"config.yaml": OmegaConf.to_yaml(cfg, resolve=True)}, env):
                report = trainer.fit(*args)
        else:
            if rank:
                mark_ready()
            report = trainer.fit(*args)
        out = {
            "fit/epochs": float(report.epochs),
            "fit/processes": float(report.world_size),
            "fit/steps": float(report.steps),
        } | (privacy.spent() if privacy is not None else {})
        if report.best_epoch is not None:
            out.update({"fit/best_epoch": float(report.best_epoch), "fit/best_val_monitor": report.best_score})
        return out
    model.fit(split.train, split.val)
    return {}


def run_rank() -> None:
    """Rank 1..N-1 of a DDP run (started by :func:`fit` of rank 0): the run's saved config rebuilds the data, split
    (read back), features (from the cache) and model, then trains with rank 0; nothing is tracked or evaluated
    here. A trial pruned by rank 0's decision ends quietly."""
    from mmbench.training.distributed import group_file

    cfg = OmegaConf.load(group_file("config.yaml"))
    try:
        run(cfg)
    except BaseException as e:
        if type(e).__name__ != "TrialPruned":
            raise


def _train_only(cfg: DictConfig) -> RunResult:
    """What a DDP rank other than 0 does in :func:`run`: the stages up to training, untracked."""
    tracker = NullTracker()
    ds, split = load_data(cfg)
    ds = content_for_training(ds, split.train)
    features, _ = encode(cfg, ds, split, tracker)
    user_features, _ = encode(cfg, ds, split, tracker, "user_encoders")
    evaluator: Evaluator = instantiate(cfg.eval)
    model: Recommender = instantiate(cfg.model)
    give_features(model, features)
    give_user_features(model, user_features)
    with tempfile.TemporaryDirectory(prefix="mmbench-rank-") as tmp:
        facts = fit(model, split, cfg, evaluator, tracker, Path(tmp))
    return RunResult(facts, "", "", split)


def check_devices(cfg: DictConfig) -> int:
    """The number of training processes ``cfg.trainer`` asks for; an unsupported device count or strategy fails
    before any work (a ConfigError naming the value)."""
    try:
        return processes(cfg.trainer.devices, cfg.trainer.accelerator, cfg.trainer.strategy)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def encode(
    cfg: DictConfig, ds: Dataset, split: Split, tracker: Tracker, side: str = "encoders"
) -> tuple[dict[str, ModalityFeatures], dict[str, float]]:
    """The encoder stage: ``cfg.<side>`` (modality -> encoder) into item features (``encoders``) or user features
    (``user_encoders``; masked where a user has none); nothing when empty. Content statistics are fitted on the
    training part of ``split`` (unless an encoder is ``transductive``)."""
    encoders = {str(m): instantiate(c) for m, c in (cfg.get(side) or {}).items()}
    if not encoders:
        return {}, {}
    build = build_user_features if side == "user_encoders" else build_features
    features, tags, times = build(encoders, ds, cfg.paths.cache_dir, split.train)
    tracker.set_tags(tags)
    return features, times


def give_features(model: Recommender, features: dict[str, ModalityFeatures]) -> None:
    """Models that read item features (``capabilities.item_features``) receive them before ``fit``; other models
    ignore them (with a warning)."""
    if model.capabilities.item_features:
        model.set_features(features)
    elif features:
        log.warning("%s uses no item features: encoders %s are ignored", type(model).__name__, sorted(features))


def give_user_features(model: Recommender, features: dict[str, ModalityFeatures]) -> None:
    """Models that read user features (``capabilities.user_features``) receive them before ``fit``, even none (so
    a model that needs them fails before training); other models ignore them (with a warning)."""
    if model.capabilities.user_features:
        model.set_user_features(features)
    elif features:
        log.warning("%s uses no user features: user_encoders %s are ignored", type(model).__name__, sorted(features))


def save_result(
    ds: Dataset, result: EvalResult, folder: Path, part: str, topk: bool, groups: dict[str, np.ndarray] | None = None
) -> None:
    """``metrics/per_user_<part>.tsv`` (raw user id, every metric and a 0/1 column per user group: ``sparse`` as
    the evaluator flags it, the split's groups such as ``truncated``) and, with ``topk`` and a ranking evaluation,
    ``recommendations/<part>_topk.tsv`` (empty top-K slots left out)."""
    (folder / "metrics").mkdir(parents=True, exist_ok=True)
    per_user = pd.DataFrame({"user": ds.user_ids[result.users], **result.per_user})
    for name, flags in (groups or {}).items():
        per_user[name] = flags.astype(np.int8)
    per_user.to_csv(folder / "metrics" / f"per_user_{part}.tsv", sep="\t", index=False, float_format="%.10g")
    if topk and result.topk_items is not None:  # None: the evaluator ranked nothing (eval=rating)
        (folder / "recommendations").mkdir(exist_ok=True)
        topk_frame(ds.user_ids, ds.item_ids, result.users, result.topk_items, result.topk_scores).to_csv(
            folder / "recommendations" / f"{part}_topk.tsv", sep="\t", index=False, float_format="%.8g"
        )


def user_groups(result: EvalResult, split: Split, evaluator: Evaluator) -> dict[str, np.ndarray]:
    """Per evaluated user, membership of each user group: the evaluator's ``sparse`` users and the split's groups
    (the one definition every reader of the per-user files uses)."""
    sparse = evaluator.sparse_flags(result, split.train)
    groups = {} if sparse is None or not len(result.users) else {"sparse": sparse}
    members = {g: np.isin(result.users, users) for g, users in split.groups.items()}
    return groups | members


def data_parts(name: str, split: Split) -> list[DataPart]:
    """The split's parts as the tracker records them: digest the split fingerprint's first 16 characters (its
    folder name) and the part, source the saved part file, rows / users / items as profile."""
    parts = {"train": split.train, "val": split.val, "test": split.test}
    return [
        DataPart(
            name=name,
            digest=f"{split.fingerprint[:16]}-{part}",
            source=str(split.files()[part].resolve()),
            context=part,
            profile={
                "rows": len(inter),
                "users": int(np.count_nonzero(np.bincount(inter.users, minlength=1))),
                "items": int(np.count_nonzero(np.bincount(inter.items, minlength=1))),
            },
        )
        for part, inter in parts.items()
    ]


def config_yaml(resolved: dict) -> str:
    """The YAML ``OmegaConf.save(cfg, path, resolve=True)`` writes, from the resolved container of ``cfg``."""
    import yaml
    from omegaconf._utils import get_omega_conf_dumper

    return yaml.dump(
        resolved, default_flow_style=False, allow_unicode=True, sort_keys=False, Dumper=get_omega_conf_dumper()
    )


def format_table(metrics: dict[str, float]) -> str:
    """Rows of metric names, columns val and test."""
    names = sorted(
        {k.split("/", 1)[1] for k in metrics if k.startswith(("val/", "test/")) and not k.endswith("n_users")},
        key=lambda n: (n.split("@")[0], int(n.split("@")[1]) if "@" in n else 0),
    )
    w = max([14, *(len(n) + 2 for n in names)])  # group metrics (sparse/…, truncated/…) are longer
    lines = [f"{'metric':<{w}}{'val':>10}{'test':>10}", "-" * (w + 20)]
    for n in names:
        v, t = metrics.get(f"val/{n}", float("nan")), metrics.get(f"test/{n}", float("nan"))
        lines.append(f"{n:<{w}}{v:>10.4f}{t:>10.4f}")
    return "\n".join(lines)


def run_tags(cfg: DictConfig, model: str) -> dict[str, str]:
    """Tags known before any work: what runs, from which code, in which sweep or study."""
    tags = {
        "model": model,
        "model_class": str(cfg.model._target_),
        "seed": str(cfg.seed),
        "git_commit": git_commit(),
        "mmbench_version": mmbench.__version__,
        "command": " ".join(sys.argv),
        **sweep_tags(),
    }
    fusion = cfg.model.get("fusion")
    if isinstance(fusion, DictConfig) and "_target_" in fusion:  # conf/fusion/late.yaml builds LateFusion
        tags["fusion"] = str(fusion._target_).rsplit(".", 1)[-1].removesuffix("Fusion").lower()
    # tags given on the command line win over derived ones (the mm grid tags fusion '-' on runs without modalities)
    tags.update({str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in cfg.tags.items()})
    if cfg.trial.parent_run_id:
        tags["mlflow.parentRunId"] = str(cfg.trial.parent_run_id)  # nested under the study in the MLflow UI
    if cfg.trial.number is not None:
        tags["optuna_study"], tags["optuna_trial"] = str(cfg.trial.study_name), str(cfg.trial.number)
    return tags


def check_candidates(cfg: DictConfig) -> dict[str, str]:
    """``eval.candidates=target`` ranks only the evaluated part's items, which reveals the held-out items: it is
    meant for splits that declare ``cold`` items / users. On a warm split it fails before any work, unless
    ``eval.force_candidates=true`` (then tagged ``eval.forced_candidates``)."""
    if cfg.eval.get("candidates") != "target":
        return {}
    splitter = import_target(cfg.split._target_)
    if getattr(splitter, "cold", None):
        return {}
    if not cfg.eval.get("force_candidates"):
        raise ValueError(
            f"eval.candidates=target on split {splitter.__name__} (not a cold-item / cold-user split) ranks only "
            "the test items and so reveals them; use split=cold_item or split=cold_user, eval.candidates=all, "
            "or force it with eval.force_candidates=true"
        )
    log.warning("eval.candidates=target forced on %s: only the target items are ranked", splitter.__name__)
    return {"eval.forced_candidates": "true"}


def make_explainer(cfg: DictConfig, name: str, capabilities: object) -> Explainer | None:
    """``cfg.explain`` built (None when off); a model that cannot explain itself or a ``top_k`` beyond the
    evaluator's lists fails here, before any work."""
    if cfg.get("explain") is None:
        return None
    if not getattr(capabilities, "explains", False):
        raise ValueError(
            f"explain: model {name} ({cfg.model._target_}) does not explain its scores; models that do declare "
            "Capabilities(explains=True): fusion_rec, vbpr, freedom"
        )
    explainer: Explainer = instantiate(cfg.explain)
    max_k = max(cfg.eval.ks)
    if explainer.top_k > max_k:
        raise ValueError(f"explain.top_k={explainer.top_k} exceeds the test lists' length max(eval.ks)={max_k}")
    if not cfg.evaluate_test:
        log.warning("explain: evaluate_test=false, so there are no test recommendations to explain")
    return explainer


def run(cfg: DictConfig) -> RunResult:
    """Run the configured benchmark; the test set is evaluated exactly once, after fitting.

    With ``evaluate_test=false`` (hyperparameter-search trials) the test set is not touched at all. Under DDP
    (``trainer.devices`` > 1) this process is rank 0: it alone opens the tracked run, writes the config, split and
    artifacts and evaluates; the other ranks only train (:func:`run_rank`).
    """
    name = model_name(cfg)
    meter = FitMeter(energy=bool(cfg.costs.energy), country_iso_code=str(cfg.costs.country_iso_code))
    meter.warm_up()  # codecarbon's hardware detection (~1.2 s of waiting) behind the checks, imports and data loading
    capabilities = getattr(import_target(str(cfg.model._target_)), "capabilities", None)
    validate(cfg, skip=() if capabilities is None or capabilities.neural else ("callbacks",))
    forced = check_candidates(cfg)
    if capabilities is not None and capabilities.neural:
        check_devices(cfg)
    explainer = make_explainer(cfg, name, capabilities)
    dp, attack = privacy_stage(cfg, capabilities)
    instantiate(cfg.model)  # the model's own checks (e.g. model.sparse with another optimizer) before data and features
    torch.set_num_threads(int(cfg.threads))
    seed_everything(int(cfg.seed))
    if launched_rank():  # DDP rank 1..N-1: train with rank 0, which alone tracks, evaluates and writes
        return _train_only(cfg)
    tracker: Tracker = instantiate(cfg.logger)
    dataset_name = cfg.dataset.get("name") or getattr(import_target(cfg.dataset._target_), "name", "dataset")
    tracker.start(run_name=f"{name}-{dataset_name}-seed{cfg.seed}", tags=run_tags(cfg, name) | forced)
    status = "FAILED"
    try:
        with tempfile.TemporaryDirectory(prefix="mmbench-run-") as tmp:
            work = Path(tmp)
            resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # resolved once for both
            (work / "config.yaml").write_text(config_yaml(resolved), encoding="utf-8")
            tracker.log_params(flatten(resolved))
            times: dict[str, float] = {}

            t = time.perf_counter()
            ds, split = load_data(cfg)
            times["time/data_s"] = time.perf_counter() - t
            tracker.set_tags(
                {"dataset": ds.name, "split_fingerprint": split.fingerprint, "split_dir": str(split.directory)}
                | {f"data_sha256.{file}": digest for file, digest in ds.files.items()}
            )
            tracker.log_inputs(data_parts(ds.name, split))

            ds = content_for_training(ds, split.train)  # split-dependent content (tags, reviews): training events only
            t = time.perf_counter()
            features, enc_times = encode(cfg, ds, split, tracker)
            user_features, user_times = encode(cfg, ds, split, tracker, "user_encoders")
            times.update(enc_times | user_times)
            if features or user_features:
                times["time/encode_s"] = time.perf_counter() - t

            evaluator: Evaluator = instantiate(cfg.eval)
            model: Recommender = instantiate(cfg.model)
            give_features(model, features)
            give_user_features(model, user_features)
            with meter.measure():
                t = time.perf_counter()
                fit_facts = fit(model, split, cfg, evaluator, tracker, work, dp)
                times["time/fit_s"] = time.perf_counter() - t

            t = time.perf_counter()
            val = evaluator.evaluate(model, split.val, [split.train], desc="validation")
            times["time/eval_val_s"] = time.perf_counter() - t
            groups = user_groups(val, split, evaluator)
            metrics = {f"val/{k}": v for k, v in (val.means | group_means(val, groups)).items()}
            metrics["val/n_users"] = val.n_users
            save_result(ds, val, work, "val", topk=False, groups=groups)
            if cfg.evaluate_test:
                t = time.perf_counter()
                test = evaluator.evaluate(model, split.test, [split.train, split.val], keep_topk=True, desc="test")
                times["time/eval_test_s"] = time.perf_counter() - t
                groups = user_groups(test, split, evaluator)
                metrics.update({f"test/{k}": v for k, v in (test.means | group_means(test, groups)).items()})
                metrics["test/n_users"] = test.n_users
                save_result(ds, test, work, "test", topk=True, groups=groups)
                if explainer is not None:  # explanations/test_topk.tsv, test_evidence.tsv; explain/... metrics
                    t = time.perf_counter()
                    explained = explainer.explain(model, test, split.train, ds.user_ids, ds.item_ids)
                    explained.save(work / "explanations", "test")
                    metrics.update(explained.metrics)
                    times["time/explain_s"] = time.perf_counter() - t
                if attack is not None:  # test events are the non-members: never seen by the model
                    metrics.update(attack(model, split.train, split.test))
            metrics.update({**times, **fit_facts})
            metrics.update(model.diagnostics())
            if isinstance(model, torch.nn.Module):
                metrics["model/n_params"] = float(sum(p.numel() for p in model.parameters()))
            if cfg.evaluate_test:  # the model that made the test lists, with what ranks them
                excl = Evaluator.exclusion([split.train, split.val], split.test.n_users, split.test.n_items)
                topk = TopK(model, evaluator, ds.user_ids, ds.item_ids, excl, evaluator.candidate_mask(split.test))
                metrics.update(tracker.log_model(topk))
            metrics["memory/peak_rss_mb"] = meter.peak_rss_mb()
            if torch.cuda.is_available():
                metrics["memory/peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
            metrics.update(meter.metrics)
            tracker.set_tags(meter.tags)
            if cfg.costs.flops:  # after the memory peaks: the measured training step is not in them
                epochs = fit_facts.get("fit/epochs")
                flops, flop_tags = flop_costs(
                    model,
                    split.train,
                    int(cfg.trainer.batch_size),
                    int(cfg.seed),
                    None if epochs is None else int(epochs),
                )
                metrics.update(flops)
                tracker.set_tags(flop_tags)
            # one step past training's last: MLflow shows a key's value at its highest step, and Lightning logged
            # every epoch's val/<metric> at its global step; the run's val/<metric> is that of the restored weights
            tracker.log_metrics(metrics, step=int(metrics.get("fit/steps", -1)) + 1)

            # the split files are stored once per fingerprint (split.directory, tag split_dir) and referenced, not
            # copied into every run: split/split.json names the folder that holds train/val/test.tsv
            (work / "split").mkdir()
            meta = json.loads((split.directory / "split.json").read_text())
            meta["directory"] = str(split.directory.resolve())
            (work / "split" / "split.json").write_text(json.dumps(meta, indent=2, default=str))
            # config.yaml, metrics/, recommendations/, split/, checkpoints/: one call
            tracker.log_artifacts(work)
        status = "FINISHED"
        return RunResult(metrics, tracker.run_id, tracker.artifact_uri, split)
    except BaseException as e:
        if type(e).__name__ == "TrialPruned":
            tracker.set_tags({"optuna_state": "PRUNED"})
            status = "KILLED"
        raise
    finally:
        tracker.end(status)
