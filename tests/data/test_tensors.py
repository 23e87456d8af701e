import pytest
import torch

from mmbench.data.tensors import take


@pytest.mark.parametrize("shape", [(4096,), (64, 40)])
@pytest.mark.parametrize("width", [(), (1,), (37,), (3, 5)])
def test_take_gives_indexings_values_and_gradients_bit_for_bit(shape, width):
    torch.manual_seed(0)
    x = torch.randn(300, *width, requires_grad=True)
    idx = torch.randint(0, 300, shape)  # every row repeated many times: gradients are sums in index order
    upstream = torch.randn(*shape, *width) * 10.0 ** torch.randint(-8, 8, (*shape, *width))  # orders of magnitude
    # one torch thread (tests/conftest.py, mmbench's default): the claim is for it; more may sum in another order
    assert torch.get_num_threads() == 1
    out, ref = take(x, idx), x[idx]
    (got,) = torch.autograd.grad(out, x, upstream)
    (want,) = torch.autograd.grad(ref, x, upstream)
    assert out.shape == ref.shape == (*shape, *width) and torch.equal(out, ref)
    assert torch.equal(got, want)
    assert (want != 0).any()


def test_take_keeps_the_dtype_of_non_float_tables():
    mask = torch.tensor([True, False, True])
    tokens = torch.tensor([[1, 2], [3, 4], [5, 6]])
    idx = torch.tensor([2, 0, 2])
    assert torch.equal(take(mask, idx), torch.tensor([True, True, True]))
    assert torch.equal(take(tokens, idx), tokens[idx]) and take(tokens, idx).dtype == torch.int64


def test_take_rejects_an_index_out_of_range_like_indexing():
    x = torch.zeros(3, 2)
    with pytest.raises(IndexError):
        take(x, torch.tensor([3]))
