"""The database going away: health turns into a 503 JSON error while bicd stays up, and comes back
by itself. Runs last (zz) because it stops the stack's MariaDB for a moment."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import REPO, Client, wait_until  # noqa: E402


class DatabaseOutage(unittest.TestCase):
    def test_health_503_within_2s_then_recovers_without_restart(self):
        c = Client()
        var = c.var
        self.assertEqual(c.get("/api/v1/health").status, 200)
        with open(os.path.join(var, "run", "bicd.pid")) as f:
            bicd_pid = int(f.read())
        with open(os.path.join(var, "run", "mariadbd.pid")) as f:
            db_pid = int(f.read())
        os.kill(db_pid, 15)
        stopped = time.monotonic()
        r = wait_until(lambda: (lambda x: x if x.status == 503 else None)(c.get("/api/v1/health")), timeout=10)
        took = time.monotonic() - stopped
        self.assertIsNotNone(r, "health never turned 503")
        self.assertLess(took, 2.0)
        self.assertEqual(r.json["error"]["code"], "database_unavailable")
        self.assertEqual(r.header("content-type"), "application/json")
        os.kill(bicd_pid, 0)  # still running
        # every route that needs the database says so the same way
        self.assertEqual(c.get("/api/v1/auth/me").status, 401)  # no cookie: decided without the database
        def gone():
            try:
                os.kill(db_pid, 0)
                return False
            except ProcessLookupError:
                return True
        self.assertTrue(wait_until(gone, timeout=60), "MariaDB did not stop")
        # start MariaDB again (the stack script only starts what is missing)
        env = dict(os.environ, BIC_VAR=var)
        subprocess.run([os.path.join(REPO, "appliance", "bic-stack"), "up"], env=env, check=True, capture_output=True)
        ok = wait_until(lambda: c.get("/api/v1/health").status == 200, timeout=10)
        self.assertTrue(ok)
        with open(os.path.join(var, "run", "bicd.pid")) as f:
            self.assertEqual(int(f.read()), bicd_pid, "bicd was restarted")
        # all workers recover, not just one: several requests in a row succeed
        for _ in range(8):
            self.assertEqual(c.get("/api/v1/health").status, 200)
        c.login_admin()
        self.assertEqual(c.get("/api/v1/users?limit=1").status, 200)


if __name__ == "__main__":
    unittest.main()
