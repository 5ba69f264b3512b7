"""Train / test / validation assignment.

``thesis`` follows section 7.1: 10 % validation, then of the rest 25 % test and
75 % train, one fixed seed. ``group`` keeps the same proportions but never cuts a
group of near-duplicate pictures (OASIS's ``Acorns 1..3``) across splits, so that
held-out figures are not flattered by a sibling in the training set. Leave one
source out needs no assignment here: the manifest keeps ``source``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

VALIDATION_SHARE = 0.10
TEST_SHARE_OF_REST = 0.25
SPLITS = ("train", "test", "validation")
METHODS = ("thesis", "group")


def split_sizes(n: int) -> tuple[int, int, int]:
    """(train, test, validation) counts for ``n`` items.

    Held-out shares round up, as scikit-learn's ``train_test_split`` (the thesis's
    tool) does: that is what turns 17,810 pictures into table 7.1's 12,021 / 4,008 / 1,781.
    """
    n_val = math.ceil(round(n * VALIDATION_SHARE, 9))
    n_test = math.ceil(round((n - n_val) * TEST_SHARE_OF_REST, 9))
    return n - n_val - n_test, n_test, n_val


def thesis_split(n: int, seed: int) -> np.ndarray:
    """One label per item: shuffle with ``seed``, then cut validation, test, train."""
    _, n_test, n_val = split_sizes(n)
    order = np.random.default_rng(seed).permutation(n)
    labels = np.empty(n, dtype=object)
    labels[order[:n_val]] = "validation"
    labels[order[n_val:n_val + n_test]] = "test"
    labels[order[n_val + n_test:]] = "train"
    return labels


def group_split(groups: Sequence[str], seed: int) -> np.ndarray:
    """Like ``thesis_split`` but whole groups go to one split.

    Groups are shuffled with ``seed`` and handed out in that order: validation
    fills first, then test, the rest is train. Counts land within one group's size
    of the thesis proportions.
    """
    keys, inverse, counts = np.unique(np.asarray(groups, dtype=object).astype(str),
                                      return_inverse=True, return_counts=True)
    _, n_test, n_val = split_sizes(len(inverse))
    group_label = np.empty(len(keys), dtype=object)
    filled_val = filled_test = 0
    for g in np.random.default_rng(seed).permutation(len(keys)):
        if filled_val < n_val:
            group_label[g] = "validation"
            filled_val += counts[g]
        elif filled_test < n_test:
            group_label[g] = "test"
            filled_test += counts[g]
        else:
            group_label[g] = "train"
    return group_label[inverse]


def assign(method: str, groups: Sequence[str], seed: int) -> np.ndarray:
    """Split labels for items whose group keys are ``groups`` (ungrouped items carry a unique key)."""
    if method == "thesis":
        return thesis_split(len(groups), seed)
    if method == "group":
        return group_split(groups, seed)
    raise ValueError(f"unknown split {method!r}; choose one of {', '.join(METHODS)}")
