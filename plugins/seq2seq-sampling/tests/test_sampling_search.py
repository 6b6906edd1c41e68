"""The sampling strategy honours seq2seq's search contract and its own options."""

import pytest
import torch
from seq2seq_sampling import filter_logits, topk_sample

from seq2seq.nn.model import ModelSpec, Seq2Seq
from seq2seq.search import generate
from seq2seq.testing import check_search


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: extra intra-op threads only add overhead (and contention)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    "options",
    [{}, {"temperature": 0.5, "top_k": 5}, {"top_p": 0.8, "seed": 3}, {"num_samples": 3}],
)
def test_contract(options):
    check_search(topk_sample, **options)


@pytest.fixture(scope="module")
def model_and_batch():
    torch.manual_seed(0)
    model = Seq2Seq(ModelSpec(30, 40, embedding_size=8, hidden_size=16, dropout=0.0)).eval()
    src = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    return model, src, torch.tensor([4, 2])


def test_top_k_one_is_greedy(model_and_batch):
    model, src, lengths = model_and_batch
    greedy = generate(model, src, lengths, "greedy", max_length=20)
    sampled = generate(model, src, lengths, "topk_sample", max_length=20, top_k=1, seed=0)
    assert [h[0].tokens for h in sampled] == [h[0].tokens for h in greedy]


def test_seed_makes_samples_reproducible(model_and_batch):
    model, src, lengths = model_and_batch

    def run(seed):
        hyps = generate(model, src, lengths, "topk_sample", max_length=20, seed=seed, num_samples=4)
        return [[h.tokens for h in sentence] for sentence in hyps]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    kept = ~torch.isinf(filter_logits(logits, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 < 0.7, so 0.3 is needed too
    assert (~torch.isinf(filter_logits(logits, top_p=0.1))).sum() == 1  # the best always stays


def test_bad_options_are_reported(model_and_batch):
    model, src, lengths = model_and_batch
    with pytest.raises(ValueError, match="temperature must be > 0"):
        generate(model, src, lengths, "topk_sample", temperature=0.0)
    with pytest.raises(LookupError, match="unknown option 'topk'.*did you mean 'top_k'"):
        generate(model, src, lengths, "topk_sample", topk=3)
