"""Guessing the teacher code is slowed down: a few wrong codes are free, then every further
one makes the next try wait longer, per browser tab and for the whole server; while a wait
runs even the right code does not count. The clock is a plain number the test moves."""

import pytest

from digits_core.serve.backoff import Backoff, CodeGuard


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_few_wrong_tries_are_free_then_each_one_waits_longer():
    clock = Clock()
    b = Backoff(free=3, first=5.0, most=60.0, clock=clock)
    for _ in range(3):
        assert b.wait("tab") == 0
        b.failed("tab")
    assert b.wait("tab") == 5.0  # the fourth try waits
    clock.now += 4.9
    assert 0 < b.wait("tab") < 0.2
    clock.now += 0.2
    assert b.wait("tab") == 0
    waits = []
    for _ in range(5):
        waits.append(b.failed("tab"))
        clock.now += waits[-1]
    assert waits == pytest.approx([10.0, 20.0, 40.0, 60.0, 60.0])  # doubling, up to the longest wait
    assert b.wait("other tab") == 0  # one tab's guesses do not lock another


def test_a_right_try_forgets_the_wrong_ones_and_time_does_too():
    clock = Clock()
    b = Backoff(free=2, first=5.0, forget=600.0, clock=clock)
    b.failed("tab")
    b.failed("tab")
    assert b.wait("tab") > 0
    clock.now += 10
    b.succeeded("tab")
    b.failed("tab")
    assert b.wait("tab") == 0  # counting starts over
    b.failed("tab")
    clock.now += 601
    assert b.wait("tab") == 0  # an hour-old guess no longer counts
    b.failed("tab")
    assert b.wait("tab") == 0


def test_many_tabs_guessing_lock_the_whole_server_and_the_right_code_waits_too():
    clock = Clock()
    guard = CodeGuard(clock=clock, per_tab=3, per_server=6)
    for tab in ("a", "b", "c"):  # each tab stays under its own limit...
        assert guard.attempt(tab, right=False) is None
        assert guard.attempt(tab, right=False) is None
    refusal = guard.attempt("d", right=True)  # ...but the server has seen six wrong codes
    assert refusal is not None and "this server" in refusal and "try again in" in refusal
    clock.now += 3600
    assert guard.attempt("d", right=True) is None  # the wait is over: the right code works


def test_one_tab_guessing_is_told_to_wait_and_the_right_code_does_not_work_meanwhile():
    clock = Clock()
    guard = CodeGuard(clock=clock, per_tab=3, per_server=100)
    answers = [guard.attempt("tab", right=False) for _ in range(3)]
    assert answers == [None, None, None]  # wrong, and the page says so, but no wait yet
    refusal = guard.attempt("tab", right=True)
    assert refusal is not None and "too many wrong teacher codes" in refusal and "\n" not in refusal
    assert guard.attempt("elsewhere", right=True) is None  # another tab is not locked
    clock.now += 5.0
    assert guard.attempt("tab", right=True) is None
