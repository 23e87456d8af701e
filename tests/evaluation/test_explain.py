"""Explanations: exact decompositions against hand-computed terms, Integrated Gradients' completeness and its
closed form on a polynomial, the deletion test where the answer is known, nearest-neighbour evidence, and the
pipeline's explanations/test_topk.tsv."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from mmbench import pipeline
from mmbench.config import ConfigError, compose, validate
from mmbench.data.interactions import ItemContent
from mmbench.encoders.base import ModalityFeatures
from mmbench.encoders.text import LSTMEncoder
from mmbench.evaluation.evaluator import EvalResult
from mmbench.evaluation.explain import COLUMNS, EVIDENCE_COLUMNS, TOKEN_COLUMNS, Attribution, Explainer
from mmbench.fusion import AttentionFusion, EarlyFusion, GatedFusion, GraphFusion, HybridFusion, LateFusion
from mmbench.models.multimodal.freedom import FREEDOM
from mmbench.models.multimodal.fusion_rec import FusionRec
from mmbench.models.multimodal.vbpr import VBPR
from tests.helpers.config import cfg_for
from tests.helpers.data import make_interactions

N_USERS, N_ITEMS = 4, 8
TRAIN = make_interactions(
    [(0, 0), (0, 1), (0, 5), (1, 1), (1, 2), (2, 0), (2, 2), (2, 6), (3, 3), (3, 4), (3, 7), (1, 7)], N_USERS, N_ITEMS
)
IMAGE_MASK = np.array([True, False, True, True, False, True, True, True])  # items 1 and 4 have no image
FUSIONS = {
    "early": lambda: EarlyFusion(hidden_dim=8),
    "late": lambda: LateFusion(),
    "hybrid": lambda: HybridFusion(hidden_dim=8),
    "attention": lambda: AttentionFusion(attention_dim=5),
    "gated": lambda: GatedFusion(),
    "graph": lambda: GraphFusion(k=2),
}
# every user against every item: the pairs explained in most tests
USERS, ITEMS = (torch.as_tensor(a.ravel()) for a in np.meshgrid(np.arange(N_USERS), np.arange(N_ITEMS), indexing="ij"))


def features(user: bool = False) -> dict[str, ModalityFeatures]:
    rng = np.random.default_rng(1)
    n = N_USERS if user else N_ITEMS
    if user:
        return {
            "profile": ModalityFeatures("profile", np.array([True, True, False, True]), values=rng.normal(size=(n, 3)))
        }
    return {
        "text": ModalityFeatures("text", np.ones(n, bool), values=rng.normal(size=(n, 5)).astype(np.float32)),
        "image": ModalityFeatures("image", IMAGE_MASK, values=rng.normal(size=(n, 3)).astype(np.float32)),
    }


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter drawn at random (a trained model's are far from their initial zeros and ones)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)


def fusion_rec(name: str, user_features: bool = False, **kw) -> FusionRec:
    torch.manual_seed(0)
    m = FusionRec(embedding_dim=4, fusion=FUSIONS[name](), **kw)
    m.set_features(features())
    if user_features:
        m.set_user_features(features(user=True))
    m.build(TRAIN)
    randomise(m)
    return m.eval()


def pair_scores(model) -> torch.Tensor:
    with torch.no_grad():
        return model.score(torch.arange(N_USERS))[USERS, ITEMS]


@pytest.mark.parametrize("name", FUSIONS)
def test_gates_one_give_the_score_and_rows_are_independent(name):
    m = fusion_rec(name)
    ones = torch.ones(len(USERS), 3)
    with torch.no_grad():
        assert torch.allclose(m.gated_score(USERS, ITEMS, ones), pair_scores(m), atol=1e-5)
        # gates of one row never change another row
        g = ones.clone()
        g[0] = torch.tensor([0.0, 0.3, 2.0])
        assert torch.allclose(m.gated_score(USERS, ITEMS, g)[1:], pair_scores(m)[1:], atol=1e-5)


def test_late_fusion_split_is_each_sources_weighted_term():
    m = fusion_rec("late")
    att = Explainer().attribute(m, USERS, ITEMS)
    assert att.method == "exact" and att.sources == ["id", "text", "image"]
    # by hand: w_s <p_u^s, h_s>, the weights renormalised over the item's sources
    with torch.no_grad():
        pu = m.user_emb(USERS).view(len(USERS), 3, 4)
        h = {"id": m.item_emb(ITEMS)} | {s: m.proj[s](torch.as_tensor(features()[s].values)[ITEMS]) for s in m.proj}
        w = torch.softmax(m.fusion.logits, 0).expand(len(ITEMS), 3).clone()
        w[:, 2] *= torch.as_tensor(IMAGE_MASK)[ITEMS]
        w = w / w.sum(1, keepdim=True)
        want = torch.stack([w[:, k] * (pu[:, k] * h[s]).sum(-1) for k, s in enumerate(["id", "text", "image"])], 1)
    assert np.allclose(att.contributions, want.numpy(), atol=1e-5)
    assert np.abs(att.contributions.sum(1) + att.baseline - pair_scores(m).numpy()).max() < 1e-5
    assert np.all(att.contributions[~IMAGE_MASK[ITEMS.numpy()], 2] == 0)  # a missing image contributes nothing
    assert np.allclose(att.weights["image"], w[:, 2].numpy())
    assert np.allclose(att.deletion, att.contributions, atol=1e-5)  # additive: removing a source removes its term


def test_vbpr_split_is_the_id_term_and_each_modalitys_content_term():
    torch.manual_seed(0)
    m = VBPR(embedding_dim=3, content_dim=2)
    m.set_features(features())
    m.build(TRAIN)
    randomise(m)
    att = Explainer().attribute(m.eval(), USERS, ITEMS)
    assert att.method == "exact"
    with torch.no_grad():
        ident = m.beta_i.weight[ITEMS, 0] + (m.gamma_u(USERS) * m.gamma_i(ITEMS)).sum(-1)
        want = [ident]
        for s, cols in (("text", slice(0, 5)), ("image", slice(5, 8))):
            x = features()[s].values * features()[s].mask[:, None]
            x = torch.as_tensor(x / np.linalg.norm(x[features()[s].mask], axis=1).mean(), dtype=torch.float32)[ITEMS]
            e = m.E.weight[:, cols]
            want.append((m.theta_u(USERS) * (x @ e.T)).sum(-1) + x @ m.beta_c.weight[0, cols])
    assert np.allclose(att.contributions, torch.stack(want, 1).numpy(), atol=1e-5)
    assert np.abs(att.contributions.sum(1) - pair_scores(m).numpy()).max() < 1e-5 and not att.baseline.any()


def test_graph_fusion_split_propagates_each_source_alone():
    m = fusion_rec("graph")
    att = Explainer().attribute(m, USERS, ITEMS)
    assert att.method == "exact"
    assert np.abs(att.contributions.sum(1) - pair_scores(m).numpy()).max() < 1e-5
    with torch.no_grad():  # the text term by hand: p_u · ((I + S) (h_text / n_modalities of the item))_i
        x = m.proj["text"](torch.as_tensor(features()["text"].values))
        x = x / torch.as_tensor(1.0 + IMAGE_MASK, dtype=torch.float32)[:, None]
        prop = x + m.fusion.graph.to_dense() @ x
        want = (m.user_emb(USERS) * prop[ITEMS]).sum(-1)
    assert np.allclose(att.contributions[:, 1], want.numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["attention", "gated"])
def test_integrated_gradients_are_complete_on_smooth_fusions(name):
    """Softmax, tanh and sigmoid are analytic along the path: 16 Gauss-Legendre points integrate to float precision."""
    m = fusion_rec(name)
    att = Explainer(n_steps=16).attribute(m, USERS, ITEMS)
    assert att.method == "integrated_gradients"
    gap = pair_scores(m).numpy() - att.baseline - att.contributions.sum(1)
    assert np.abs(gap).max() < 1e-5
    assert np.abs(att.contributions - att.deletion).max() > 1e-2  # not additive: deletion is not the attribution
    # the model's own weights beside the attributions
    assert set(att.weights) == ({"id", "text", "image"} if name == "attention" else {"text", "image"})


@pytest.mark.parametrize("name", ["early", "hybrid"])
def test_integrated_gradients_converge_through_relu_kinks(name):
    """A ReLU MLP is piecewise linear along the path: the gap shrinks with the steps, to under 1% of the scores."""
    m = fusion_rec(name)
    scores = pair_scores(m).numpy()
    gaps = []
    for n_steps in (16, 256):
        att = Explainer(n_steps=n_steps).attribute(m, USERS, ITEMS)
        gaps.append(np.abs(scores - att.baseline - att.contributions.sum(1)).mean())
    assert gaps[1] < gaps[0] / 4 and gaps[1] < 0.01 * np.abs(scores).mean(), gaps
    assert np.abs(att.baseline).max() > 1e-2  # the MLP's biases score something with every source zeroed


def test_user_features_are_a_source_and_their_cross_terms_split_evenly():
    m = fusion_rec("late", user_features=True)
    att = Explainer(n_steps=8).attribute(m, USERS, ITEMS)
    assert att.sources == ["id", "text", "image", "user_features"] and att.method == "integrated_gradients"
    # F(g) = (e_u + g_f f_u) · Σ_s g_s v_s: IG gives e_u·v_s + f_u·v_s / 2 to source s and Σ_s f_u·v_s / 2 to the
    # user features (a degree-2 polynomial: Gauss-Legendre is exact)
    with torch.no_grad():
        eye = torch.eye(4)
        v = [m.gated_score(USERS, ITEMS, eye[k].expand(len(USERS), 4)) for k in range(3)]  # e_u · v_s
        both = [m.gated_score(USERS, ITEMS, (eye[k] + eye[3]).expand(len(USERS), 4)) for k in range(3)]
        cross = [b - a for a, b in zip(v, both)]  # f_u · v_s
    want = torch.stack([a + c / 2 for a, c in zip(v, cross)] + [sum(cross) / 2], 1)
    assert np.allclose(att.contributions, want.numpy(), atol=1e-5)
    assert np.abs(att.contributions.sum(1) - pair_scores(m).numpy()).max() < 1e-5


def freedom(n_mm_layers: int) -> FREEDOM:
    torch.manual_seed(0)
    m = FREEDOM(embedding_dim=4, k=2, n_mm_layers=n_mm_layers, modality_weights=[0.3, 0.7])
    m.set_features(features())
    m.build(TRAIN)
    randomise(m)
    return m.eval()


def test_freedom_modality_graphs_sum_to_its_item_graph_and_one_layer_is_exact():
    m = freedom(1)
    assert torch.allclose(sum(a.to_dense() for a in m.modality_parts()), m.mm_adj.to_dense(), atol=1e-6)
    att = Explainer().attribute(m, USERS, ITEMS)
    assert att.method == "exact"
    with torch.no_grad():
        ug, ig = m.propagate_ui(m.full_adj)
        text = (ug[USERS] * (m.modality_parts()[0].to_dense() @ m.item_emb.weight)[ITEMS]).sum(-1)
        assert np.allclose(att.contributions[:, 0], (ug[USERS] * ig[ITEMS]).sum(-1).numpy(), atol=1e-5)
    assert np.allclose(att.contributions[:, 1], text.numpy(), atol=1e-5)
    assert np.abs(att.contributions.sum(1) - pair_scores(m).numpy()).max() < 1e-5


def test_captum_integrated_gradients_match_eulers_closed_form_on_two_item_layers():
    """Two item-item layers: the modality part is homogeneous of degree 2 in the modality gates, so IG (from 0 along
    the diagonal) is ∂P/∂g_m / 2 at gates 1 (Euler), the id term linear: computed here by autograd, not Captum."""
    m = freedom(2)
    att = Explainer(n_steps=16).attribute(m, USERS, ITEMS)
    assert att.method == "integrated_gradients"
    g = torch.ones(len(USERS), 3, requires_grad=True)
    grad = torch.autograd.grad(m.gated_score(USERS, ITEMS, g).sum(), g)[0]
    want = torch.cat([grad[:, :1], grad[:, 1:] / 2], 1)
    assert np.allclose(att.contributions, want.numpy(), atol=1e-5)
    assert np.abs(att.contributions.sum(1) - pair_scores(m).numpy()).max() < 1e-5


def test_a_modality_the_model_ignores_gets_nothing_and_the_deletion_test_finds_the_one_it_reads():
    """Attention fusion whose text projection is zero: text contributes 0, removing it changes no score, and
    removing the top-attributed source changes scores more than removing a random one."""
    m = fusion_rec("attention")
    with torch.no_grad():
        m.proj["text"][1].weight.zero_()
        m.proj["text"][1].bias.zero_()
    att = Explainer().attribute(m, USERS, ITEMS)
    assert np.abs(att.contributions[:, 1]).max() < 1e-6 and np.abs(att.deletion[:, 1]).max() < 1e-6
    metrics = Explainer.metrics(att, pair_scores(m).numpy())
    assert metrics["explain/share_text"] < 1e-6
    assert metrics["explain/deletion_top"] > metrics["explain/deletion_random"]
    assert metrics["explain/deletion_top_modality"] > metrics["explain/deletion_random_modality"]


def test_deletion_metrics_by_hand():
    att = Attribution(
        sources=["id", "text", "image"],
        contributions=np.array([[3.0, 1.0, 0.0], [0.5, -2.0, 1.0]]),
        baseline=np.array([0.0, 0.5]),
        full=np.array([4.0, 0.0]),
        deletion=np.array([[2.5, 1.0, -0.5], [0.5, -1.5, 1.0]]),
        weights={},
        method="integrated_gradients",
    )
    out = Explainer.metrics(att, np.array([4.0, 0.2]))
    # row 0: top |c| is id (deletion 2.5), row 1: text (|-1.5|); random: the mean |deletion| of each row
    assert out["explain/deletion_top"] == pytest.approx((2.5 + 1.5) / 2)
    assert out["explain/deletion_random"] == pytest.approx((4.0 / 3 + 3.0 / 3) / 2)
    # among the modalities: row 0 text (1.0), row 1 text (1.5); random over text and image
    assert out["explain/deletion_top_modality"] == pytest.approx((1.0 + 1.5) / 2)
    assert out["explain/deletion_random_modality"] == pytest.approx((0.75 + 1.25) / 2)
    assert out["explain/completeness_gap"] == pytest.approx((0.0 + 0.2) / 2)
    assert out["explain/contribution_text"] == pytest.approx(-0.5)
    assert out["explain/share_id"] == pytest.approx((3 / 4 + 0.5 / 3.5) / 2)


def test_evidence_is_the_users_training_items_nearest_in_each_frozen_modality():
    x = np.array([[1, 0], [0, 1], [1, 1], [-1, 0], [1, 0.2]], np.float32)
    feats = {"text": ModalityFeatures("text", np.array([True, True, True, True, False]), values=x)}
    m = VBPR(embedding_dim=2, content_dim=2)
    m.set_features(feats)
    train = make_interactions([(0, 0), (0, 1), (0, 3), (0, 4), (1, 1)], 2, 5)
    ex = Explainer(n_evidence=2)
    (mod, top, sim), *rest = ex.evidence(m, np.array([0, 1, 0]), np.array([2, 2, 4]), train)
    assert mod == "text" and not rest
    # user 0 on item 2 (1, 1): items 0 and 1 tie at cos 0.707 (stable order: 0 first); 3 is opposite, 4 has no text
    assert top[0].tolist() == [0, 1] and np.allclose(sim[0], [np.sqrt(0.5)] * 2)
    assert top[1].tolist() == [1, -1] and np.isnan(sim[1, 1])  # user 1 saw one item
    assert top[2].tolist() == [-1, -1]  # the recommended item has no text: no evidence


def test_explain_picks_the_seeded_users_and_writes_every_column():
    m = fusion_rec("attention")
    with torch.no_grad():
        s = m.score(torch.arange(N_USERS))
    top = torch.topk(s, 3, 1)
    result = EvalResult({}, np.arange(N_USERS), {}, top.indices.numpy(), top.values.numpy(), N_USERS)
    ex = Explainer(top_k=2, n_users=3, seed=5, n_evidence=1).explain(
        m, result, TRAIN, np.array([10, 11, 12, 13]), np.arange(100, 108)
    )
    users = np.sort(np.random.default_rng(5).choice(N_USERS, 3, replace=False))
    assert ex.frame["user"].tolist() == np.repeat(users + 10, 2).tolist()
    assert ex.frame["rank"].tolist() == [1, 2] * 3
    assert ex.frame["item"].tolist() == (top.indices[users, :2].numpy().ravel() + 100).tolist()
    assert list(ex.frame.columns) == [
        *COLUMNS,
        *(f"contribution_{s}" for s in ("id", "text", "image")),
        "completeness_gap",
        *(f"weight_{s}" for s in ("id", "text", "image")),
        *(f"deletion_{s}" for s in ("id", "text", "image")),
        "user_train_events",
        "item_train_events",
    ]
    assert list(ex.evidence.columns) == list(EVIDENCE_COLUMNS) and set(ex.evidence["modality"]) == {"text", "image"}
    assert ex.metrics["explain/n_pairs"] == 6


def test_pipeline_writes_explanations_of_its_test_lists(tmp_path):
    cfg = cfg_for(
        tmp_path,
        "model=fusion_rec",
        "fusion@model.fusion=attention",
        "+encoder@encoders.image=multihot",
        "+encoder@encoders.text=tfidf",
        "trainer.max_epochs=2",
        "explain=default",
        "explain.n_users=5",
        "explain.top_k=4",
    )
    res = pipeline.run(cfg)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    frame = pd.read_csv(
        download_artifacts(run_id=res.run_id, artifact_path="explanations/test_topk.tsv", tracking_uri=uri), sep="\t"
    )
    topk = pd.read_csv(
        download_artifacts(run_id=res.run_id, artifact_path="recommendations/test_topk.tsv", tracking_uri=uri), sep="\t"
    )
    assert frame["user"].nunique() == 5 and len(frame) == 20 and set(frame["method"]) == {"integrated_gradients"}
    merged = frame.merge(topk, on=["user", "rank"], suffixes=("", "_ranked"))
    assert len(merged) == 20 and (merged["item"] == merged["item_ranked"]).all()
    assert np.allclose(merged["score"], merged["score_ranked"], atol=1e-6)
    assert frame["completeness_gap"].abs().max() < 1e-3
    parts = frame[["baseline", "contribution_id", "contribution_image", "contribution_text"]].sum(1)
    assert np.allclose(parts + frame["completeness_gap"], frame["score"], atol=1e-5)
    ev = pd.read_csv(
        download_artifacts(run_id=res.run_id, artifact_path="explanations/test_evidence.tsv", tracking_uri=uri),
        sep="\t",
    )
    seen = set(zip(res.split.train.users.tolist(), res.split.train.items.tolist()))
    # synthetic raw ids are the contiguous ones: every evidence item is one of the user's training items
    assert len(ev) and all((u, i) in seen for u, i in zip(ev["user"], ev["train_item"]))
    m = res.metrics
    assert m["explain/n_pairs"] == 20 and "time/explain_s" in m and m["explain/deletion_top"] >= 0
    run = MlflowClient(uri).get_run(res.run_id)
    assert run.data.params["explain.n_users"] == "5"


def test_explain_on_a_model_that_cannot_fails_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="bpr .* does not explain"):
        pipeline.run(cfg_for(tmp_path, "model=bpr", "explain=default"))
    with pytest.raises(ValueError, match="explain.top_k=30 exceeds"):
        pipeline.run(cfg_for(tmp_path, "model=vbpr", "explain=default", "explain.top_k=30"))
    assert not (tmp_path / "mlflow.db").exists() or not MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(
        [e.experiment_id for e in MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_experiments()]
    )


TEXTS = [
    "dark crime thriller",
    "funny romantic comedy",
    "space war epic",
    "dark space horror",
    "funny family cartoon",
    "crime drama",
    "romantic drama",
    "war drama epic",
]


def lstm_fusion_rec() -> FusionRec:
    content = ItemContent("text", TEXTS, np.ones(N_ITEMS, bool))
    text = ModalityFeatures("text", content.mask, encoder=LSTMEncoder(50, 6, 5, max_len=4), content=content)
    torch.manual_seed(0)
    m = FusionRec(embedding_dim=4, fusion=AttentionFusion(attention_dim=3))
    m.set_features({"text": text, "image": features()["image"]})
    m.build(TRAIN)
    randomise(m)
    return m.eval()


def test_token_attributions_are_complete_and_name_the_items_words():
    m = lstm_fusion_rec()
    module = m.token_modules()["text"]
    assert list(m.token_modules()) == ["text"]
    attr, gap = Explainer(n_steps=16).token_attributions(m, module, USERS, ITEMS)
    assert np.abs(gap).max() < 1e-5  # LSTM gates are smooth: Gauss-Legendre integrates to float precision
    tokens = module.tokens[ITEMS].numpy()
    assert np.all(attr[tokens == 0] == 0) and np.abs(attr[tokens > 0]).min() > 0  # pads are never attributed
    # the words' sum is the score minus the score with every word's embedding zeroed (the pad's kept)
    with torch.no_grad():
        emb = module.embedding.weight.clone()
        module.embedding.weight[1:] = 0
        without = m.gated_score(USERS, ITEMS, torch.ones(len(USERS), 3))
        module.embedding.weight.copy_(emb)
    assert np.allclose(attr.sum(1), (pair_scores(m) - without).numpy(), atol=1e-5)
    # a word whose embedding is zero gets nothing
    drama = module.words.index("drama")
    with torch.no_grad():
        module.embedding.weight[drama] = 0
    attr, _ = Explainer(n_steps=16).token_attributions(m, module, USERS, ITEMS)
    assert np.abs(attr[tokens == drama]).max() == 0 and (tokens == drama).any()


def test_explanations_list_the_top_words_of_a_token_encoder():
    m = lstm_fusion_rec()
    with torch.no_grad():
        s = m.score(torch.arange(N_USERS))
    top = torch.topk(s, 2, 1)
    result = EvalResult({}, np.arange(N_USERS), {}, top.indices.numpy(), top.values.numpy(), N_USERS)
    ex = Explainer(top_k=2, n_tokens=2, n_steps=8).explain(m, result, TRAIN, np.arange(N_USERS), np.arange(N_ITEMS))
    t = ex.tokens
    assert list(t.columns) == list(TOKEN_COLUMNS) and len(t) == 2 * 2 * N_USERS and set(t["modality"]) == {"text"}
    for item, pos, word in zip(t["item"], t["position"], t["word"]):
        assert TEXTS[item].split()[pos - (4 - len(TEXTS[item].split()))] == word  # pads in front (Keras 'pre')
    first = t.groupby(["user", "rank"])["attribution"].apply(lambda a: abs(a.iloc[0]) >= abs(a.iloc[1]))
    assert first.all() and "explain/token_gap_text" in ex.metrics
    assert set(ex.evidence["modality"]) == {"image"}  # nearest-neighbour evidence for the frozen modality only


def test_explain_config_builds_the_explainer_and_a_typo_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    cfg = compose(["explain=default", "explain.n_users=7"])
    validate(cfg)
    ex = instantiate(cfg.explain)
    assert isinstance(ex, Explainer) and (ex.top_k, ex.n_users, ex.n_steps) == (10, 7, 64)
    assert compose([]).get("explain") is None  # off by default
    with pytest.raises(ConfigError, match="n_step"):
        validate(compose(["explain=default", "+explain.n_step=3"]))
    with pytest.raises(ValueError, match="explain.top_k=0"):
        Explainer(top_k=0)
