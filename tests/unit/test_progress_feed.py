"""The progress the user sees (bar, progress.jsonl, loss curve) read from each backend's own step log,
including the case that broke CI once: a run killed after its last checkpoint and resumed. LLaMA-Factory
starts its log again at the checkpoint; ms-swift appends to it. Either way each step is shown once."""

from __future__ import annotations

import json
import os

import pytest

from stylewrap.backends.registry import backend_class
from stylewrap.backends.trainlog import ProgressFeed

LOG_LINES = {
    "llamafactory": lambda step, total: {"current_steps": step, "total_steps": total, "loss": 3.0 - step / 100},
    "swift": lambda step, total: {"global_step/max_steps": f"{step}/{total}", "loss": 3.0 - step / 100},
}


def write(path, steps, total=40, mode="a", backend="llamafactory"):
    with open(path, mode, encoding="utf-8") as handle:
        for step in steps:
            handle.write(json.dumps(LOG_LINES[backend](step, total)) + "\n")


@pytest.mark.parametrize("backend", sorted(LOG_LINES))
@pytest.mark.parametrize("restart", ["new file", "appended"])
def test_a_resumed_run_shows_each_step_once(tmp_path, backend, restart):
    log = tmp_path / "log.jsonl"
    feed = ProgressFeed(backend_class(backend)(), log)
    write(log, range(1, 16), backend=backend)          # killed after step 15; the last checkpoint is step 12
    feed.poll()
    if restart == "new file":
        os.unlink(log)
    write(log, range(13, 41), backend=backend)         # resumed from checkpoint-12
    feed.poll()
    assert [r.step for r in feed.records] == list(range(1, 41))


def test_an_evaluation_at_a_training_step_is_kept(tmp_path):
    log = tmp_path / "trainer_log.jsonl"
    feed = ProgressFeed(backend_class("llamafactory")(), log)
    write(log, [1, 2])
    with open(log, "a") as handle:
        handle.write(json.dumps({"current_steps": 2, "total_steps": 40, "eval_loss": 2.5}) + "\n")
    write(log, [3])
    feed.poll()
    assert [(r.step, r.loss is None) for r in feed.records] == [(1, False), (2, False), (2, True), (3, False)]
