"""scripts/peers/run_mmrec.py: what a finished grid combination is keyed by, so an interrupted grid resumes only
where nothing it depends on changed (the MMRec runs themselves need the peers' environment: README, peers)."""

from __future__ import annotations

import json

from scripts.peers.run_mmrec import job_digest, save_atomic


def test_job_digest_holds_the_job_and_the_exported_bytes_not_where_it_writes(tmp_path):
    data = tmp_path / "data" / "ml100k"
    data.mkdir(parents=True)
    (data / "ml100k.inter").write_text("userID\titemID\n0\t1\n")
    (data / "image_feat.npy").write_bytes(b"\x00\x01")
    job = {"data_path": str(tmp_path / "data"), "dataset": "ml100k", "model": "LightGCN", "config": {}, "threads": 1}
    key = job_digest(job | {"out": "a", "grid": "full"}).hexdigest()
    assert key == job_digest(job | {"out": "b", "grid": "first", "resume": True}).hexdigest()  # same results
    assert key != job_digest(job | {"threads": 2}).hexdigest()
    assert key != job_digest(job | {"config": {"epochs": 2}}).hexdigest()
    (data / "image_feat.npy").write_bytes(b"\x00\x02")  # another export in the same folder
    assert key != job_digest(job).hexdigest()


def test_save_atomic_leaves_only_the_finished_file(tmp_path):
    path = tmp_path / "k.json"
    save_atomic(path, lambda tmp: tmp.write_text(json.dumps({"best_valid": 0.5})))
    assert json.loads(path.read_text()) == {"best_valid": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]
