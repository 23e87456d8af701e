import torch

from mmbench.models.neural.lightgcn import LightGCN
from tests.helpers.graphs import A_HAND, GRAPH, S2, S3, S6
from tests.helpers.models import community_recall

E0 = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]])  # one dimension: node k starts at k + 1


def model_on_graph(n_layers: int) -> LightGCN:
    m = LightGCN(embedding_dim=1, n_layers=n_layers)
    m.build(GRAPH)
    with torch.no_grad():
        m.embedding.weight.copy_(E0)
    return m


def test_one_layer_propagation_by_hand():
    # E1 = Â E0: u0 = 4/√2 + 5/√6, u1 = 5/√3, u2 = 5/√6 + 6/√2, i0 = 1/√2, i1 = 1/√6 + 2/√3 + 3/√6, i2 = 3/√2
    e1 = [4 / S2 + 5 / S6, 5 / S3, 5 / S6 + 6 / S2, 1 / S2, 4 / S6 + 2 / S3, 3 / S2]
    expected = (E0.squeeze(1) + torch.tensor(e1)) / 2  # layer mean of E0 and E1
    out = model_on_graph(1).propagate().squeeze(1)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_three_layers_and_scores():
    e0 = E0.double().numpy()
    e1 = A_HAND @ e0
    e2 = A_HAND @ e1
    e3 = A_HAND @ e2
    final = (e0 + e1 + e2 + e3) / 4
    m = model_on_graph(3)
    torch.testing.assert_close(m.propagate().double(), torch.tensor(final), atol=1e-5, rtol=0)
    expected_scores = final[:3] @ final[3:].T  # users x items dot products
    torch.testing.assert_close(m.score(torch.arange(3)).double(), torch.tensor(expected_scores), atol=1e-4, rtol=0)


def test_scores_are_cached_until_the_weights_change():
    m = model_on_graph(2)
    a = m.score(torch.arange(3))
    assert m.final_embeddings() is m.final_embeddings()  # no recomputation between parameter updates
    with torch.no_grad():
        m.embedding.weight.mul_(2.0)  # an in-place update, as an optimiser step does
    torch.testing.assert_close(m.score(torch.arange(3)), 4 * a)  # dot products of doubled embeddings


def test_learns_the_community_structure():
    model = LightGCN(embedding_dim=8, n_layers=2, optimizer=lambda p: torch.optim.Adam(p, lr=0.05))
    assert community_recall(model, epochs=40, batch_size=64) > 0.75


def test_loss_is_bpr_on_propagated_embeddings_with_layer0_penalty():
    m = model_on_graph(1)
    m.reg = 0.1
    u, i, j = torch.tensor([0, 2]), torch.tensor([1, 2]), torch.tensor([0, 0])
    out = m.propagate()
    x = out[u, 0] * (out[3 + i, 0] - out[3 + j, 0])
    w = E0[:, 0]
    reg = (w[u] ** 2 + w[3 + i] ** 2 + w[3 + j] ** 2) / 2
    torch.testing.assert_close(m.loss((u, i, j)), (-torch.nn.functional.logsigmoid(x) + 0.1 * reg).mean())
