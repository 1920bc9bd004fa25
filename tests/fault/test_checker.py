"""The fault tests' checker (tests/lib/jepsen.py) on hand-made histories: it accepts a correct
one, with unknown (info) outcomes, and it catches each kind of violation it claims to catch."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import jepsen  # noqa: E402


class FakeHistory(jepsen.History):
    """A history whose clock the test sets."""

    def __init__(self):
        super().__init__()
        self.t = 0.0

    def now(self):
        return self.t

    def at(self, t):
        self.t = t
        return self


def op(h, t0, t1, user, f, kind, value, result=None):
    inv = h.at(t0).invoke(user, f, value)
    h.at(t1).complete(inv, kind, result)


def connect(h, t0, t1, user, kind="ok", session=None, desktop=None):
    op(h, t0, t1, user, "connect", kind, {"pool": 1},
       {"session": session, "desktop": desktop, "pool": 1} if kind == "ok" else {"status": 503})


def logoff(h, t0, t1, user, session, kind="ok"):
    op(h, t0, t1, user, "logoff", kind, {"session": session}, {"session": session})


def session(id_, user, desktop, start, end=None):
    return {"id": id_, "user_id": user, "pool_id": 1, "desktop_id": desktop, "state": "logged_off" if end else
            "connected", "started_at": start, "ended_at": end}


class Checker(unittest.TestCase):
    def good(self):
        h = FakeHistory()
        connect(h, 0, 1, 10, session=100, desktop=7)
        logoff(h, 2, 3, 10, 100)
        connect(h, 4, 5, 11, session=101, desktop=7)  # the same desktop, after the log-off
        connect(h, 6, 7, 12, kind="info")              # unknown: may have made session 102
        connect(h, 8, 9, 12, session=102, desktop=8)   # ... and it did: reused
        db = [session(100, 10, 7, 1000.0, 1002.5), session(101, 11, 7, 1004.5),
              session(102, 12, 8, 1006.5)]
        return h, db, {7: 11, 8: 12}

    def test_a_correct_history_is_valid(self):
        h, db, desks = self.good()
        r = jepsen.check_allocation(h, db, desks, end_time=20)
        self.assertTrue(r["valid"], r["errors"])
        self.assertEqual((r["holds"], r["counts"]["connect info"]), (3, 1))

    def test_two_users_holding_one_desktop(self):
        h = FakeHistory()
        connect(h, 0, 1, 10, session=100, desktop=7)
        connect(h, 2, 3, 11, session=101, desktop=7)   # 10 never logged off
        db = [session(100, 10, 7, 1000.5), session(101, 11, 7, 1002.5)]
        r = jepsen.check_allocation(h, db, {7: 11}, end_time=20)
        self.assertFalse(r["valid"])
        self.assertTrue(any(e.startswith("history: desktop held by two users") for e in r["errors"]), r["errors"])
        self.assertTrue(any(e.startswith("database: desktop held by two users") for e in r["errors"]), r["errors"])

    def test_overlap_only_in_the_database(self):
        h, db, desks = self.good()
        db[1]["started_at"] = 1002.0  # started before session 100 ended
        r = jepsen.check_allocation(h, db, desks, end_time=20)
        self.assertEqual([e.split(":")[0] for e in r["errors"]], ["database"], r["errors"])

    def test_a_lost_acknowledged_assignment(self):
        h, db, desks = self.good()
        r = jepsen.check_allocation(h, [s for s in db if s["id"] != 101], {7: None, 8: 12}, end_time=20)
        self.assertIn("acknowledged session 101 (user 11, desktop 7) is not in the database", r["errors"])

    def test_an_acknowledged_session_ended_behind_the_users_back(self):
        h, db, desks = self.good()
        db[2]["ended_at"] = 1010.0
        r = jepsen.check_allocation(h, db, {7: 11, 8: None}, end_time=20)
        self.assertIn("acknowledged session 102 was never logged off, but the database ended it", r["errors"])

    def test_a_lost_acknowledged_logoff(self):
        h, db, desks = self.good()
        db[0]["ended_at"] = None
        r = jepsen.check_allocation(h, db, desks, end_time=20)
        self.assertIn("log-off of session 100 was acknowledged, but it is still live", r["errors"])

    def test_a_desktop_assigned_without_a_session(self):
        h, db, desks = self.good()
        desks[9] = 10
        r = jepsen.check_allocation(h, db, desks, end_time=20)
        self.assertFalse(r["valid"])
        self.assertEqual(r["leaked"], 1)

    def test_a_user_with_two_sessions_of_one_pool(self):
        h = FakeHistory()
        connect(h, 0, 1, 10, session=100, desktop=7)
        connect(h, 2, 3, 10, session=101, desktop=8)
        db = [session(100, 10, 7, 1000.5), session(101, 10, 8, 1002.5)]
        r = jepsen.check_allocation(h, db, {7: 10, 8: 10}, end_time=20)
        self.assertTrue(any("two sessions at once" in e and e.startswith("history") for e in r["errors"]), r["errors"])
        self.assertTrue(any("two sessions at once" in e and e.startswith("database") for e in r["errors"]), r["errors"])

    def test_a_logoff_with_unknown_outcome_ends_the_certain_hold(self):
        h = FakeHistory()
        connect(h, 0, 1, 10, session=100, desktop=7)
        logoff(h, 2, 3, 10, 100, kind="info")          # it did log off (the answer was lost)
        connect(h, 4, 5, 11, session=101, desktop=7)
        db = [session(100, 10, 7, 1000.5, 1002.5), session(101, 11, 7, 1004.5)]
        r = jepsen.check_allocation(h, db, {7: 11}, end_time=20)
        self.assertTrue(r["valid"], r["errors"])

    def test_recovery_times(self):
        h = FakeHistory()
        inv = h.at(10).invoke("nemesis", "kill -9 bicd")
        h.at(12).complete(inv, "ok", {"healed_at": 12.0, "detail": ""})
        connect(h, 10.5, 11, 10, kind="info")
        connect(h, 12.1, 13.5, 10, session=100, desktop=7)
        r = jepsen.recovery_times(h)
        self.assertEqual(len(r), 1)
        self.assertEqual((r[0]["recovery_s"], r[0]["outage_s"], r[0]["not_ok_ops"]), (1.5, 3.5, 1))


if __name__ == "__main__":
    unittest.main()
