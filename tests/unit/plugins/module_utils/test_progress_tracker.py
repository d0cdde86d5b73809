"""The lines the progress callback prints, from task results."""
from ansible_collections.hosting.migration.plugins.module_utils.progress_tracker import ProgressTracker


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def move(move_id, account, step, freeze=None):
    return {"move": {"id": move_id, "account": account, "source": "dedicated1", "target": "transit1",
                     "step": step, "freeze_window_s": freeze}}


def test_moves_are_numbered_timed_and_estimated():
    clock = Clock()
    tracker = ProgressTracker(clock)
    assert tracker.play_start("Move hosting accounts") == ["[hosting.migration] phase: Move hosting accounts"]
    assert tracker.result("ansible.builtin.set_fact", {"ansible_facts": {"migrate_pending": ["alice", "bob", "carol"]}}) == [
        "[hosting.migration] 3 account(s) to move: alice, bob, carol"]
    assert tracker.result("hosting.migration.ledger", move(1, "alice", "planned")) == [
        "[hosting.migration] move 1 of 3: alice, dedicated1 to transit1 (0 s elapsed)"]
    tracker.result("hosting.migration.account_sync", {"stats": {"bytes_sent": 3 * 1024 * 1024}})
    tracker.result("hosting.migration.database_copy", {"bytes": 1024 * 1024})
    assert tracker.result("hosting.migration.ledger", move(1, "alice", "frozen")) == []
    clock.now += 40
    assert tracker.result("hosting.migration.ledger", move(1, "alice", "done", 4.25)) == [
        "[hosting.migration] alice done in 40 s: freeze 4.2 s, 4.0 MiB copied"]
    clock.now += 2
    assert tracker.result("hosting.migration.ledger", move(2, "bob", "planned")) == [
        "[hosting.migration] move 2 of 3: bob, dedicated1 to transit1 (42 s elapsed, about 1 min 20 s left)"]


def test_a_resumed_move_says_where_it_resumes_and_other_results_say_nothing():
    tracker = ProgressTracker(Clock())
    tracker.play_start("Move hosting accounts")
    tracker.result("ansible.builtin.set_fact", {"ansible_facts": {"migrate_pending": ["bob"]}})
    assert tracker.result("hosting.migration.ledger", move(7, "bob", "frozen")) == [
        "[hosting.migration] move 1 of 1: bob, dedicated1 to transit1 (0 s elapsed, resumed at step frozen)"]
    assert tracker.result("ansible.builtin.debug", {"msg": "hello"}) == []
    assert tracker.result("hosting.migration.ledger", {"lock": {"name": "x"}}) == []


def test_no_account_left():
    tracker = ProgressTracker(Clock())
    tracker.play_start("Move hosting accounts")
    assert tracker.result("ansible.builtin.set_fact", {"ansible_facts": {"migrate_pending": []}}) == [
        "[hosting.migration] no account left to move"]
