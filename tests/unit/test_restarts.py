"""The restart policy of `aidraw run`: backoff that doubles within the window, a crash limit, and forgetting."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from aidraw.restarts import STATE_ENV, Part, RestartPolicy, StateFile, how_it_ended, read_state


def test_the_pause_doubles_with_each_crash_in_the_window_up_to_a_cap() -> None:
    policy = RestartPolicy(max_crashes=100, window_s=1000)
    crashes: deque[float] = deque()
    pauses = [policy.after_crash(crashes, float(t)) for t in range(7)]
    assert pauses == [0.5, 1, 2, 4, 8, 10, 10]


def test_a_part_that_crashes_too_often_in_the_window_is_given_up() -> None:
    policy = RestartPolicy(max_crashes=3, window_s=60)
    crashes: deque[float] = deque()
    assert policy.after_crash(crashes, 0) == 0.5
    assert policy.after_crash(crashes, 10) == 1
    assert policy.after_crash(crashes, 20) is None


def test_crashes_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(max_crashes=3, window_s=60)
    crashes: deque[float] = deque()
    assert policy.after_crash(crashes, 0) == 0.5
    assert policy.after_crash(crashes, 30) == 1
    assert policy.after_crash(crashes, 61) == 1  # the first one left the window: two in it, not three
    assert policy.after_crash(crashes, 200) == 0.5


def test_a_limit_of_one_stops_at_the_first_crash() -> None:
    assert RestartPolicy(max_crashes=1).after_crash(deque(), 0) is None


def test_how_a_process_ended_is_said_in_words() -> None:
    assert how_it_ended(-9) == "killed by SIGKILL"
    assert how_it_ended(3) == "exit code 3"


def test_the_state_file_is_what_readyz_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "supervisor.json"
    part = Part("projector", "the projector process", start=lambda: None,  # type: ignore[arg-type, return-value]
                restarts=2, last_exit="killed by SIGKILL")
    StateFile(path).update([part])
    monkeypatch.setenv(STATE_ENV, str(path))
    state = read_state()
    assert state is not None
    assert state["parts"] == {"projector": {"state": "restarting", "pid": None, "restarts": 2,
                                            "last_exit": "killed by SIGKILL"}}
    path.write_text("{not json")
    assert read_state() is None
    monkeypatch.delenv(STATE_ENV)
    assert read_state() is None
