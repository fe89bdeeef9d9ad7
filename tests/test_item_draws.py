"""Drawing the items of many lists at once (`draw_item_lists`) gives every generator exactly the numbers, and
leaves it exactly where, drawing its list alone round by round (`items_by_rounds`, the definition) does."""
import pytest
import torch

from transitive.model import item_draws
from transitive.model.item_draws import draw_item_stack, draw_item_lists, items_by_rounds
from transitive.model.task import draw_items


def same_stream(a: torch.Generator, b: torch.Generator) -> bool:
    same_state = torch.equal(a.get_state(), b.get_state())
    return same_state and torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))


@pytest.mark.parametrize("batch, nbcues", [(32, 8), (3, 5), (1, 1), (7, 16), (2000, 8), (5, 2)])
def test_one_list_equals_drawing_by_rounds(batch, nbcues):
    for seed in range(3):
        by_rounds, at_once = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        expected = items_by_rounds(batch, nbcues, 15, generator=by_rounds)
        assert torch.equal(draw_items(batch, nbcues, generator=at_once), expected)
        assert same_stream(by_rounds, at_once)


def test_several_lists_at_once_equal_each_list_alone():
    lengths = [8, 4, 6, 5, 1]
    together = [torch.Generator().manual_seed(s) for s in range(5)]
    alone = [torch.Generator().manual_seed(s) for s in range(5)]
    lists = draw_item_lists(32, lengths, together, 15)
    for n, items, g, reference in zip(lengths, lists, together, alone):
        assert items.shape == (32, n, 15) and items.is_contiguous()
        assert torch.equal(items, items_by_rounds(32, n, 15, generator=reference)) and same_stream(g, reference)
    assert not torch.equal(lists[1][:, :4], lists[2][:, :4])  # different generators, different items


def test_the_default_generator_too():
    torch.manual_seed(11)
    expected = items_by_rounds(9, 7, 15)
    after = torch.rand(3)
    torch.manual_seed(11)
    assert torch.equal(draw_items(9, 7), expected) and torch.equal(torch.rand(3), after)


def test_a_pool_that_runs_out_is_drawn_again_larger(monkeypatch):
    monkeypatch.setattr(item_draws, "_pool_rows", lambda batch, nbcues: batch + 1)  # far too few rows: must retry
    g, reference = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(draw_items(16, 8, generator=g), items_by_rounds(16, 8, 15, generator=reference))
    assert same_stream(g, reference)


def test_exact_rounds_path_equals_drawing_by_rounds():
    """The path of generators whose numbers depend on the calls (a GPU's): one call per round and list with
    the exact number of rows rejected."""
    gens = [torch.Generator().manual_seed(s) for s in (7, 8)]
    refs = [torch.Generator().manual_seed(s) for s in (7, 8)]
    rounds = item_draws._lists_by_exact_rounds(12, [6, 3], gens, 15, 0.66, torch.device("cpu"))
    for n, items, g, r in zip((6, 3), rounds.items.float(), gens, refs):
        assert (items[:, n:] == 0).all()
        items = items[:, :n]
        assert torch.equal(items, items_by_rounds(12, n, 15, generator=r)) and same_stream(g, r)


@pytest.mark.parametrize("cue_size, max_agreement", [(10, 0.5), (15, 0.8), (6, 0.66)])
def test_other_sizes_and_thresholds(cue_size, max_agreement):
    g, reference = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    items = draw_item_lists(20, [5], [g], cue_size, max_agreement)[0]
    assert torch.equal(items, items_by_rounds(20, 5, cue_size, max_agreement, generator=reference))
    assert same_stream(g, reference)


def valid_lists(items: torch.Tensor, nbcues: int, max_agreement: float = 0.66) -> bool:
    """+-1 items, none agreeing with an earlier item of its list in more than max_agreement of the signs."""
    items = items[:, :nbcues]
    agreement = (items[:, :, None] == items[:, None, :]).float().mean(-1)  # (batch, k, k)
    earlier = torch.tril(torch.ones(nbcues, nbcues, dtype=torch.bool), -1)
    return bool((items.abs() == 1).all() and (agreement[:, earlier] <= max_agreement).all())


@pytest.mark.parametrize("pool_rows", [None, lambda batch, nbcues: batch + 1])
def test_pools_without_rewinding_are_valid_deterministic_and_independent(monkeypatch, pool_rows):
    """A GPU's path (generators left where their pools leave them), run here on the CPU: valid lists, the same
    for the same seeds, a list the same whatever the others; with pools far too small, drawn again larger."""
    if pool_rows is not None:
        monkeypatch.setattr(item_draws, "_pool_rows", pool_rows)

    def draw(seeds, nbcues):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        rounds = item_draws._lists_from_pools(24, nbcues, gens, 15, 0.66, torch.device("cpu"), rewind=False)
        return [items[:, :n].float() for items, n in zip(rounds.items, nbcues)]

    first, again = draw((1, 2), [8, 5]), draw((1, 2), [8, 5])
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(valid_lists(items, n) for items, n in zip(first, (8, 5)))
    if pool_rows is None:  # normal pools: a list does not depend on the others
        assert torch.equal(draw((2,), [5])[0], first[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_lists_from_pools_and_by_exact_rounds():
    """On a GPU the lists come from pools (3-4 host reads per episode): valid and reproducible; with exact=True
    each round draws the exact rows of each list, so the numbers are the definition's."""
    device = torch.device("cuda")
    pooled = [draw_item_stack(32, [8, 5, 7], [torch.Generator(device).manual_seed(s) for s in range(3)], 15,
                              device=device) for _ in range(2)]
    assert torch.equal(*pooled)
    assert all(valid_lists(items.cpu(), n) for items, n in zip(pooled[0], (8, 5, 7)))
    together = [torch.Generator(device).manual_seed(s) for s in range(3)]
    alone = [torch.Generator(device).manual_seed(s) for s in range(3)]
    stack = draw_item_stack(32, [8, 5, 7], together, 15, device=device, exact=True)
    for n, items, g, r in zip((8, 5, 7), stack, together, alone):
        assert torch.equal(items[:, :n], items_by_rounds(32, n, 15, device=device, generator=r))
        assert torch.equal(g.get_state(), r.get_state())