"""Sum tree: sums after batch updates, descent against hand values, sampling frequencies
proportional to the priorities (chi-square at a fixed seed), rebuild bit for bit."""

import pytest
import torch

from data.sum_tree import SumTree

# chi-square 0.999 quantile with 9 degrees of freedom (10 positive priorities, 1 constraint)
CHI2_999_DF9 = 27.877


def _tree(priorities: list[float], capacity: int | None = None, branching: int = 32) -> SumTree:
    tree = SumTree(capacity or len(priorities), branching=branching)
    tree.update(torch.arange(len(priorities)), torch.tensor(priorities))
    return tree


def _chi_square(counts: torch.Tensor, p: torch.Tensor) -> float:
    expected = counts.sum() * p / p.sum()
    keep = p > 0
    return float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())


@pytest.mark.parametrize("branching", [2, 3, 32])
def test_inner_nodes_are_the_sums_of_their_children_after_batch_updates(branching):
    tree = _tree([1.0, 2.0, 3.0, 4.0, 5.0], capacity=5, branching=branching)
    assert tree.depth == {2: 3, 3: 2, 32: 1}[branching]  # 8, 9 or 32 leaves, the rest padding
    assert tree.total().item() == 15.0
    tree.update(torch.tensor([4, 0, 4]), torch.tensor([0.5, 10.0, 0.5]))  # 4 twice, same value
    assert tree.priorities().tolist() == [10.0, 2.0, 3.0, 4.0, 0.5]
    assert tree.total().item() == 19.5
    for d in range(tree.depth):
        sums = tree.levels[d + 1].view(-1, branching).sum(-1)
        assert torch.equal(tree.levels[d], sums), d


@pytest.mark.parametrize("branching", [2, 4, 32])
def test_find_descends_to_the_leaf_whose_prefix_interval_holds_the_mass(branching):
    tree = _tree([1.0, 2.0, 0.0, 3.0, 4.0], branching=branching)  # prefix sums 1, 3, 3, 6, 10
    mass = torch.tensor([0.0, 0.999, 1.0, 2.999, 3.0, 5.999, 6.0, 9.999])
    assert tree.find(mass).tolist() == [0, 0, 1, 1, 3, 3, 4, 4]  # leaf 2 (priority 0) skipped
    # rounding that puts a mass at or past the total still lands on the last positive leaf
    assert tree.find(torch.tensor([10.0, 10.5])).tolist() == [4, 4]
    tail = _tree([1.0, 2.0, 0.0, 0.0, 0.0], capacity=8, branching=branching)
    assert tail.find(torch.tensor([3.0, 100.0])).tolist() == [1, 1]


def test_sampling_frequencies_are_proportional_to_the_priorities():
    torch.manual_seed(0)
    p = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 0.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 0.0])
    tree = _tree(p.tolist(), branching=2)  # 4 levels below the root
    # independent draws: the counts are multinomial(P(i) = p_i / sum p)
    draws = tree.find(torch.rand(100_000, dtype=torch.float64) * tree.total())
    counts = torch.bincount(draws, minlength=len(p)).double()
    assert counts[p == 0].sum() == 0
    assert _chi_square(counts, p) < CHI2_999_DF9
    assert torch.allclose(counts / counts.sum(), p.double() / p.sum(), atol=0.005)
    # stratified batches: one draw per segment of the mass, the same frequencies
    batches = torch.stack([tree.sample(50) for _ in range(2_000)])  # [2000, 50]
    counts = torch.bincount(batches.flatten(), minlength=len(p)).double()
    assert counts[p == 0].sum() == 0
    assert _chi_square(counts, p) < CHI2_999_DF9
    assert torch.allclose(counts / counts.sum(), p.double() / p.sum(), atol=0.005)
    # segment k of the batch draws from the k-th fiftieth of the mass: sorted leaves
    assert bool((batches[:, 1:] >= batches[:, :-1]).all())


def test_sampling_follows_updated_priorities():
    torch.manual_seed(1)
    tree = _tree([1.0] * 6)
    tree.update(torch.tensor([0, 5]), torch.tensor([0.0, 5.0]))  # now 0, 1, 1, 1, 1, 5: P(5) = 5/9
    counts = torch.bincount(torch.cat([tree.sample(10) for _ in range(3_000)]), minlength=6)
    assert counts[0] == 0
    assert counts[5] / counts.sum() == pytest.approx(5 / 9, abs=0.01)


def test_rebuild_from_the_leaves_gives_the_same_tree_bit_for_bit():
    torch.manual_seed(2)
    tree = SumTree(100_000)  # 4 levels of 32 children
    assert tree.depth == 4
    for _ in range(20):
        tree.update(torch.randint(100_000, (64,)), torch.rand(64) ** 3)
    other = SumTree(100_000)
    other.priorities().copy_(tree.priorities())
    other.rebuild()
    assert all(torch.equal(a, b) for a, b in zip(other.levels, tree.levels, strict=True))


def test_a_tree_needs_a_positive_capacity_and_branching():
    with pytest.raises(ValueError, match="capacity >= 1 and branching >= 2, got capacity 0"):
        SumTree(0)
    with pytest.raises(ValueError, match="branching 1"):
        SumTree(8, branching=1)
    assert SumTree(1).depth == 1
