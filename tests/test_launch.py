"""`picaffect train --nproc N`: the launching process hands the command line it was given to torchrun."""
from __future__ import annotations

import sys

import pytest

from picaffect.core.errors import UsageError
from picaffect.training import launch


@pytest.fixture()
def calls(monkeypatch):
    """The commands the launcher starts, each answered with the exit status queued in ``codes``."""
    started: list[list[str]] = []
    codes = [0]

    def call(command, env):
        started.append(command)
        return codes.pop(0)

    monkeypatch.setattr(launch.subprocess, "call", call)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    return started, codes


def test_one_process_or_a_rank_trains_itself(calls, monkeypatch):
    started, _ = calls
    assert launch.launch_if_asked(["train", "--nproc", "1"], 1) is False
    monkeypatch.setenv("WORLD_SIZE", "2")  # already a rank under torchrun: never launch again
    assert launch.launch_if_asked(["train", "--nproc", "2"], 2) is False
    assert started == []


def test_the_given_argv_reaches_torchrun_without_nproc(calls):
    started, _ = calls
    argv = ["train", "--data", "d", "--nproc", "2", "--out", "o", "--nproc=2"]
    assert launch.launch_if_asked(argv, 2) is True
    assert started == [[sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "picaffect", "train", "--data", "d", "--out", "o"]]


def test_a_failed_rank_is_a_usage_error(calls):
    _, codes = calls
    codes[:] = [3]
    with pytest.raises(UsageError, match="exit status 3"):
        launch.launch_if_asked(["train", "--data", "d"], 2)
