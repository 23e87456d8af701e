"""scripts/compare_mmrec.py: mmbench's hyperparameters in MMRec's terms, and models it cannot run yet."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from mmbench.config import compose
from tests.helpers import oracle_peer

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_mmrec.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("compare_mmrec", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cfg(model: str, *more: str):
    return compose(["experiment=mm_ml100k", f"model={model}", "logger=none", *more])


def test_freedom_settings_are_mmbenchs(script):
    c = cfg("freedom")
    assert script.SAME["freedom"](c) == {
        "train_batch_size": int(c.trainer.batch_size),
        "epochs": 100,  # mm_ml100k's trainer.max_epochs
        "stopping_step": 10,
        "valid_metric": "NDCG@20",  # mm_ml100k's monitor
        "learner": "adam",
        "learning_rate": 0.001,
        "hyper_parameters": [],  # one point, no grid
        "embedding_size": 64,
        "feat_embed_dim": 64,
        "knn_k": 10,
        "n_ui_layers": 2,
        "n_mm_layers": 1,
        "dropout": 0.8,
        "reg_weight": 1e-4,
        "mm_image_weight": 0.5,  # modality_weights null: equal weights
    }
    # weights in `encoders` order (image, text), normalised as mmbench's modality_graph does
    assert script.SAME["freedom"](cfg("freedom", "model.modality_weights=[1,3]"))["mm_image_weight"] == 0.25
    with pytest.raises(SystemExit, match="MMRec's FREEDOM reads image and text"):
        script.SAME["freedom"](cfg("freedom", "model.modalities=[text]"))


def test_other_models_settings(script):
    assert script.SAME["vbpr"](cfg("vbpr"))["embedding_size"] == 32
    with pytest.raises(SystemExit, match="one size for ids and content"):
        script.SAME["vbpr"](cfg("vbpr", "model.content_dim=16"))
    lg = script.SAME["lightgcn"](cfg("lightgcn"))
    assert (lg["n_layers"], lg["reg_weight"], lg["learning_rate"]) == (3, 1e-4, 0.005)
    assert script.SAME["bpr"](cfg("bpr"))["reg_weight"] == 1e-3
    assert set(script.MODELS) == {"bpr", "lightgcn", "vbpr", "freedom", "bm3", "lattice"}


def test_bm3_and_lattice_settings(script):
    b = script.SAME["bm3"](cfg("bm3"))
    assert {k: b[k] for k in ("embedding_size", "n_layers", "dropout", "reg_weight", "cl_weight", "learning_rate")} == {
        "embedding_size": 64,
        "n_layers": 1,
        "dropout": 0.3,
        "reg_weight": 0.1,
        "cl_weight": 2.0,
        "learning_rate": 0.001,
    }
    lt = script.SAME["lattice"](cfg("lattice", "model.n_ui_layers=3", "model.k=7"))
    # MMRec's LightGCN depth is len(weight_size); its learning-rate decay is switched off as mmbench has none
    assert lt["weight_size"] == [64, 64, 64] and lt["knn_k"] == 7 and lt["learning_rate_scheduler"] == [1.0, 50]
    assert (lt["lambda_coeff"], lt["n_layers"], lt["reg_weight"], lt["cf_model"]) == (0.9, 1, 1e-4, "lightgcn")
    for m in ("bm3", "lattice"):
        with pytest.raises(SystemExit, match=f"{m}: MMRec's {script.PEER_CLASS[m]} reads image and text"):
            script.SAME[m](cfg(m, "model.modalities=[image]"))


def test_models_it_cannot_run_fail_before_any_work(script, tmp_path, monkeypatch):
    monkeypatch.setattr(script, "ROOT", tmp_path)
    for m in ("bm3", "lattice"):
        with pytest.raises(SystemExit, match=f"mmbench has no conf/model/{m}.yaml yet"):
            script.check_models([m], ["defaults"])
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "bm3.yaml").write_text("")
    script.check_models(["bm3"], ["defaults", "mmbench"])
    monkeypatch.setattr(script, "SAME", {k: v for k, v in script.SAME.items() if k != "bm3"})
    script.check_models(["bm3"], ["defaults"])  # MMRec's defaults need no translation
    with pytest.raises(SystemExit, match="no translation of mmbench's hyperparameters to MMRec's yet"):
        script.check_models(["bm3"], ["defaults", "mmbench"])


def test_main_ranks_the_peers_scores_with_mmbenchs_evaluator(script, tmp_path, monkeypatch, capsys):
    jobs = oracle_peer.compare(script, ["--mmrec", "/nonexistent/MMRec"], tmp_path, monkeypatch, capsys, "MMRec")
    assert [job["config"]["seed"] for job in jobs] == [0, 1]  # --seeds: MMRec's configs' seed replaced
    assert all(job["config"]["epochs"] == 1 and job["model"] == "BPR" for job in jobs)


def test_grid_workers_start_helpers_that_share_the_grid(script, tmp_path, monkeypatch, capsys):
    extra = ["--mmrec", "/nonexistent/MMRec", "--grid-workers", "2"]
    jobs = oracle_peer.compare(script, extra, tmp_path, monkeypatch, capsys, "MMRec")
    for seed, job in zip((0, 1), jobs, strict=True):
        out = tmp_path / "out" / "runs" / f"bpr-mmbench-seed{seed}"
        helper = json.loads((out / "job-helper-1.json").read_text())
        assert job["share"] and job["resume"] and "train_only" not in job  # the runner that chooses and scores
        assert helper == job | {"train_only": True}
        assert (out / "helper-job-helper-1.done").read_text() == str(out / "job-helper-1.json")  # it ran, and stopped
        assert (out / "helper-1.log").exists() and not (out / "job-helper-2.json").exists()


def test_a_failed_grid_helper_fails_the_comparison_with_its_log(script, tmp_path, monkeypatch):
    failing = tmp_path / "failing_runner.py"
    failing.write_text("import sys\nprint('helper: out of memory')\nsys.exit(3)\n")
    monkeypatch.setattr(script, "RUNNER", failing)
    (tmp_path / "out" / "combos").mkdir(parents=True)
    (tmp_path / "out" / "combos" / "old.json").write_text("{}")  # a job that does not resume starts afresh
    job = {"out": str(tmp_path / "out"), "resume": False}
    helpers = script.start_grid_helpers(sys.executable, job, 1)
    assert job["share"] and job["resume"] and not (tmp_path / "out" / "combos").exists()
    with pytest.raises(RuntimeError, match=r"grid helper failed \(exit 3\)(.|\n)*helper: out of memory"):
        script.finish_grid_helpers(helpers)
    assert script.start_grid_helpers(sys.executable, job, 0) == []


def test_grid_workers_below_one_fail_before_any_work(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["compare", "--peer-python", "p", "--mmrec", "m", "--grid-workers", "0"])
    with pytest.raises(SystemExit):
        script.main()
    assert "--grid-workers 0: at least 1" in capsys.readouterr().err
