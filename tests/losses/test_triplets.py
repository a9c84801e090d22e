"""sample_fixed_triplets and GroupBatchSampler: properties over many label layouts (hypothesis)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from artsim.triplets import GroupBatchSampler, sample_fixed_triplets

PROPERTY = settings(max_examples=30, deadline=None)

label_lists = st.lists(st.integers(0, 5), min_size=0, max_size=24)


def labels_from_sizes(sizes: list[int]) -> list[int]:
    return [group for group, size in enumerate(sizes) for _ in range(size)]


# --------------------------------------------------------------------------- sample_fixed_triplets


@PROPERTY
@given(labels=label_lists, seed=st.integers(0, 2**16))
def test_fixed_triplets_same_set(labels, seed):
    tensor = torch.tensor(labels, dtype=torch.long)
    anchors, positives, negatives = sample_fixed_triplets(tensor, seed=seed)
    assert anchors.dtype == positives.dtype == negatives.dtype == torch.long
    for a, p, n in zip(anchors.tolist(), positives.tolist(), negatives.tolist(), strict=True):
        assert p != a, "an anchor is never its own positive"
        assert labels[p] == labels[a]
        assert labels[n] != labels[a]
    # one triplet for every anchor that has both another member and a non-member, in order
    counts = Counter(labels)
    eligible = [
        i for i, label in enumerate(labels) if counts[label] >= 2 and counts[label] < len(labels)
    ]
    assert anchors.tolist() == eligible
    again = sample_fixed_triplets(tensor.clone(), seed=seed)
    for first, second in zip((anchors, positives, negatives), again, strict=True):
        assert torch.equal(first, second)


@PROPERTY
@given(labels=label_lists, ref_labels=label_lists, seed=st.integers(0, 2**16))
def test_fixed_triplets_against_references(labels, ref_labels, seed):
    anchors, positives, negatives = sample_fixed_triplets(
        torch.tensor(labels, dtype=torch.long), torch.tensor(ref_labels, dtype=torch.long), seed
    )
    for a, p, n in zip(anchors.tolist(), positives.tolist(), negatives.tolist(), strict=True):
        assert ref_labels[p] == labels[a]
        assert ref_labels[n] != labels[a]
    # across two sets the anchor's own index is no reason to skip: only labels count
    eligible = [
        i
        for i, label in enumerate(labels)
        if label in ref_labels and any(other != label for other in ref_labels)
    ]
    assert anchors.tolist() == eligible


def test_fixed_triplets_depend_on_the_seed():
    labels = torch.tensor([i % 5 for i in range(40)])
    draws = {tuple(sample_fixed_triplets(labels, seed=seed)[2].tolist()) for seed in range(4)}
    assert len(draws) == 4
    assert torch.equal(
        sample_fixed_triplets(labels, seed=1)[1], sample_fixed_triplets(labels, seed=1)[1]
    )


def test_fixed_triplets_use_every_valid_positive_and_negative():
    labels = torch.tensor([0, 0, 0, 1, 2, 3])
    seen_positives, seen_negatives = set(), set()
    for seed in range(60):
        anchors, positives, negatives = sample_fixed_triplets(labels, seed=seed)
        seen_positives.add(int(positives[0]))  # anchor 0
        seen_negatives.add(int(negatives[0]))
        assert int(anchors[0]) == 0
    assert seen_positives == {1, 2}
    assert seen_negatives == {3, 4, 5}


def test_fixed_triplets_empty_inputs():
    anchors, positives, negatives = sample_fixed_triplets(torch.tensor([], dtype=torch.long))
    assert anchors.shape == positives.shape == negatives.shape == (0,)
    anchors, _, _ = sample_fixed_triplets(torch.tensor([3, 3, 3]))  # no negatives
    assert len(anchors) == 0


# --------------------------------------------------------------------------- GroupBatchSampler


group_sizes = st.lists(st.integers(1, 8), min_size=2, max_size=10)
sampler_shape = {
    "groups_per_batch": st.integers(2, 4),
    "items_per_group": st.integers(2, 4),
    "seed": st.integers(0, 1000),
    "epoch": st.integers(0, 5),
}


def epoch_batches(labels, groups_per_batch, items_per_group, seed, epoch, rank=0, world_size=1):
    sampler = GroupBatchSampler(
        labels, groups_per_batch, items_per_group, seed=seed, rank=rank, world_size=world_size
    )
    sampler.set_epoch(epoch)
    return sampler, list(sampler)


@PROPERTY
@given(sizes=group_sizes, **sampler_shape)
def test_every_item_once_per_epoch(sizes, groups_per_batch, items_per_group, seed, epoch):
    labels = labels_from_sizes(sizes)
    sampler, batches = epoch_batches(labels, groups_per_batch, items_per_group, seed, epoch)
    flat = [index for batch in batches for index in batch]
    assert sorted(flat) == list(range(len(labels)))
    assert len(sampler) == len(batches)


@PROPERTY
@given(
    sizes=st.lists(st.integers(1, 4), min_size=2, max_size=12),
    groups_per_batch=st.integers(2, 4),
    seed=st.integers(0, 1000),
    epoch=st.integers(0, 5),
)
def test_every_batch_has_two_groups_when_groups_fit_a_batch(sizes, groups_per_batch, seed, epoch):
    labels = labels_from_sizes(sizes)
    _, batches = epoch_batches(labels, groups_per_batch, 4, seed, epoch)
    for batch in batches:
        assert len({labels[i] for i in batch}) >= 2, batch


@PROPERTY
@given(sizes=group_sizes, **sampler_shape)
def test_every_batch_has_two_groups(sizes, groups_per_batch, items_per_group, seed, epoch):
    """Also when a group is larger than ``items_per_group`` and is cut into several chunks.

    A batch whose items all share one group has no negative, so every miner skips it.
    """
    labels = labels_from_sizes(sizes)
    _, batches = epoch_batches(labels, groups_per_batch, items_per_group, seed, epoch)
    for batch in batches:
        assert len({labels[i] for i in batch}) >= 2, (batch, [labels[i] for i in batch])


def test_large_groups_never_fill_a_batch_alone():
    # two groups of five, two chunks of two per batch: found by the property test above
    labels = labels_from_sizes([5, 5])
    for seed in range(10):
        _, batches = epoch_batches(labels, 2, 2, seed, 0)
        for batch in batches:
            assert len({labels[i] for i in batch}) >= 2, (seed, batch)


@PROPERTY
@given(sizes=group_sizes, **sampler_shape)
def test_same_seed_and_epoch_give_same_batches(
    sizes, groups_per_batch, items_per_group, seed, epoch
):
    labels = labels_from_sizes(sizes)
    _, first = epoch_batches(labels, groups_per_batch, items_per_group, seed, epoch)
    _, second = epoch_batches(labels, groups_per_batch, items_per_group, seed, epoch)
    assert first == second


def test_epochs_and_seeds_change_the_order():
    labels = labels_from_sizes([3] * 10)
    by_epoch = [tuple(map(tuple, epoch_batches(labels, 3, 3, 0, epoch)[1])) for epoch in range(5)]
    assert len(set(by_epoch)) == 5
    by_seed = [tuple(map(tuple, epoch_batches(labels, 3, 3, seed, 0)[1])) for seed in range(5)]
    assert len(set(by_seed)) == 5
    # a sampler reused across epochs (as Lightning does) matches fresh ones
    sampler = GroupBatchSampler(labels, 3, 3, seed=0)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        assert tuple(map(tuple, sampler)) == by_epoch[epoch]


@PROPERTY
@given(sizes=group_sizes, **sampler_shape)
def test_two_ranks_get_disjoint_batches_of_equal_count(
    sizes, groups_per_batch, items_per_group, seed, epoch
):
    labels = labels_from_sizes(sizes)
    runs = [
        epoch_batches(labels, groups_per_batch, items_per_group, seed, epoch, rank, 2)
        for rank in (0, 1)
    ]
    (sampler_0, batches_0), (sampler_1, batches_1) = runs
    assert len(batches_0) == len(batches_1), "every process makes the same number of steps"
    assert len(sampler_0) == len(batches_0) and len(sampler_1) == len(batches_1)
    items_0 = {i for batch in batches_0 for i in batch}
    items_1 = {i for batch in batches_1 for i in batch}
    assert not items_0 & items_1
    # step by step, the two ranks together hold the single-process batch, each a non-empty part
    _, whole = epoch_batches(labels, groups_per_batch, items_per_group, seed, epoch)
    assert len(whole) == len(batches_0)
    for part_0, part_1, batch in zip(batches_0, batches_1, whole, strict=True):
        assert part_0 and part_1
        assert sorted(part_0 + part_1) == sorted(batch)


@PROPERTY
@given(
    sizes=st.lists(st.integers(1, 4), min_size=2, max_size=12),
    groups_per_batch=st.integers(2, 6),
    seed=st.integers(0, 1000),
)
def test_every_step_gives_each_rank_a_part_and_the_step_two_groups(sizes, groups_per_batch, seed):
    """Training gathers the processes' embeddings and mines over the whole step's batch, so a
    process's own part may hold one group; the step as a whole needs two, and no part is empty."""
    labels = labels_from_sizes(sizes)
    _, parts_0 = epoch_batches(labels, groups_per_batch, 4, seed, 0, 0, 2)
    _, parts_1 = epoch_batches(labels, groups_per_batch, 4, seed, 0, 1, 2)
    for part_0, part_1 in zip(parts_0, parts_1, strict=True):
        assert part_0 and part_1
        assert len({labels[i] for i in part_0 + part_1}) >= 2, (part_0, part_1)


@pytest.mark.parametrize("groups_per_batch,items_per_group", [(0, 0), (1, 1)])
def test_batch_shape_has_a_floor_of_two(groups_per_batch, items_per_group):
    labels = labels_from_sizes([4, 4, 4, 4])
    sampler = GroupBatchSampler(labels, groups_per_batch, items_per_group)
    assert (sampler.groups_per_batch, sampler.items_per_group) == (2, 2)
    assert all(len(batch) >= 4 for batch in sampler)
