from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from picaffect.data.splits import assign, group_split, split_sizes, thesis_split


def test_thesis_proportions_match_the_thesis_table():
    # Table 7.1: 17,810 pictures -> 12,021 / 4,008 / 1,781.
    assert split_sizes(17810) == (12021, 4008, 1781)
    counts = Counter(thesis_split(3463, seed=0))
    train, test, val = split_sizes(3463)
    assert counts == {"train": train, "test": test, "validation": val}
    assert val == 347 and test == 779


def test_thesis_split_is_seeded():
    assert (thesis_split(500, 1) == thesis_split(500, 1)).all()
    assert (thesis_split(500, 1) != thesis_split(500, 2)).any()


def test_group_split_never_cuts_a_group():
    groups = [f"g{i // 3}" for i in range(300)] + [f"solo{i}" for i in range(200)]
    labels = group_split(groups, seed=0)
    by_group: dict[str, set] = {}
    for g, label in zip(groups, labels):
        by_group.setdefault(g, set()).add(label)
    assert all(len(s) == 1 for s in by_group.values())
    counts = Counter(labels)
    train, test, val = split_sizes(500)
    assert abs(counts["validation"] - val) <= 3 and abs(counts["test"] - test) <= 3


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown split"):
        assign("random", ["a"], 0)


def test_group_split_on_unique_groups_keeps_proportions():
    labels = assign("group", [str(i) for i in range(1000)], seed=3)
    counts = Counter(labels)
    assert counts["validation"] == 100 and counts["test"] == 225 and counts["train"] == 675
    assert isinstance(labels, np.ndarray)
