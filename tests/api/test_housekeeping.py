"""The leader's housekeeping: ended sessions, stale login throttles and old events are pruned."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import AdminTestCase, Client, make_user, sql_root, unique, wait_until  # noqa: E402


class Housekeeping(AdminTestCase):
    def count(self, sql):
        import subprocess
        out = subprocess.run(["mariadb", "--no-defaults", "-N", "-S", os.path.join(self.admin.var, "run", "mysqld.sock"),
                              "-u", "root", "bic", "-e", sql], check=True, capture_output=True, text=True)
        return int(out.stdout.strip())

    def test_old_sessions_throttles_and_events_are_pruned(self):
        u, pw = make_user(self.admin)
        c = Client()
        c.login(u["username"], pw)
        live = self.count("SELECT COUNT(*) FROM sessions WHERE user_id = %d" % u["id"])
        self.assertEqual(live, 1)
        ghost = unique("ghost")
        Client().login(ghost, "wrong-password-123", expect=401)
        # age them past their retention
        sql_root(self.admin.var, "UPDATE sessions SET expires_at = NOW(3) - INTERVAL 2 DAY WHERE user_id = %d" % u["id"])
        sql_root(self.admin.var, "UPDATE login_throttle SET last_failure_at = NOW(3) - INTERVAL 2 DAY"
                                 " WHERE username = '%s'" % ghost)
        sql_root(self.admin.var, "INSERT INTO events (at, kind, detail) VALUES (NOW(3) - INTERVAL 40 DAY, 'test', '%s')" % ghost)
        gone = wait_until(lambda: self.count("SELECT COUNT(*) FROM sessions WHERE user_id = %d" % u["id"]) == 0
                          and self.count("SELECT COUNT(*) FROM login_throttle WHERE username = '%s'" % ghost) == 0
                          and self.count("SELECT COUNT(*) FROM events WHERE detail = '%s'" % ghost) == 0,
                          timeout=20, step=0.5)
        self.assertTrue(gone)
        # fresh rows stay
        c2 = Client()
        c2.login(u["username"], pw)
        self.assertEqual(c2.get("/api/v1/auth/me").status, 200)


if __name__ == "__main__":
    unittest.main()
