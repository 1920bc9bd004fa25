"""Two bicd processes on one database: only the holder of the leader lease runs the pool reconciler,
and the other takes over within the lease time when the holder is killed (kill -9, no release).
Runs its own private stack so that killing a bicd does not disturb the other tests."""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import Client, Stack, unique, wait_until  # noqa: E402

LEASE_SECONDS = 3


def sql(var, statement):
    r = subprocess.run(["mariadb", "--no-defaults", "-S", os.path.join(var, "run", "mysqld.sock"), "-u", "root",
                        "-N", "-B", "bic", "-e", statement], capture_output=True, text=True, check=True)
    return [line.split("\t") for line in r.stdout.splitlines()]


@unittest.skipUnless(os.access(os.path.join(os.path.dirname(__file__), "..", "..", "build", "test", "bicd"), os.X_OK),
                     "build/test/bicd is not built")
class LeaderTakeover(unittest.TestCase):
    def setUp(self):
        self.stack = Stack()
        self.stack.env["BIC_LEADER_LEASE_SECONDS"] = str(LEASE_SECONDS)
        self.stack.up()
        var = self.stack.var
        env = dict(self.stack.env, BIC_SERVER_SOCKET=os.path.join(var, "run", "bicd2.sock"),
                   BIC_SERVER_PIDFILE=os.path.join(var, "run", "bicd2.pid"),
                   BIC_LOG_ACCESS=os.path.join(var, "log", "bicd2-access.log"),
                   BIC_LOG_ERROR=os.path.join(var, "log", "bicd2-error.log"))
        self.out = open(os.path.join(var, "log", "bicd2.out"), "ab")
        self.second = subprocess.Popen([self.stack.bicd, "-c", os.path.join(var, "etc", "bicd.ini"), "serve"],
                                       env=env, stdout=self.out, stderr=self.out, stdin=subprocess.DEVNULL)
        with open(os.path.join(var, "run", "bicd.pid")) as f:
            self.first_pid = int(f.read().strip())

    def tearDown(self):
        if self.second.poll() is None:
            self.second.send_signal(signal.SIGTERM)
            self.second.wait(timeout=20)
        self.out.close()
        self.stack.down()
        self.stack.remove()

    def holder(self):
        rows = sql(self.stack.var, "SELECT holder FROM leases WHERE name = 'controller' AND expires_at > NOW(3)")
        return rows[0][0] if rows else None

    def reconciled_by(self, pid):
        return sql(self.stack.var, "SELECT reconciled_by FROM pools WHERE id = %d" % pid)[0][0]

    def make_pool(self):
        admin = Client(self.stack.var)
        admin.login_admin()
        store = os.path.join(self.stack.var, "images")
        os.makedirs(store, exist_ok=True)
        name = unique("lead") + ".qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", os.path.join(store, name), "16M"], check=True)
        img = admin.post("/api/v1/images", {"name": unique("img")}).json
        v = admin.post("/api/v1/images/%d/versions" % img["id"], {"path": name}).json
        admin.post("/api/v1/image-versions/%d/publish" % v["id"])
        sp = admin.post("/api/v1/specs", {"name": unique("s"), "vcpus": 1, "memory_mib": 256, "disk_gib": 1}).json
        bb = admin.post("/api/v1/building-blocks", {"name": unique("bb")}).json
        m = admin.post("/api/v1/building-blocks/%d/modules" % bb["id"], {"name": "m1"}).json
        r = admin.post("/api/v1/pools", {"name": unique("p"), "type": "floating", "image_id": img["id"],
                                         "spec_id": sp["id"], "min_size": 1, "max_size": 1,
                                         "name_pattern": "l-{n}", "modules": [m["id"]]})
        self.assertEqual(r.status, 201, r)
        return r.json["id"]

    def test_one_reconciler_and_takeover_within_the_lease(self):
        pids = {self.first_pid, self.second.pid}
        leader = wait_until(self.holder, timeout=10)
        self.assertIsNotNone(leader)
        pool = self.make_pool()
        self.assertTrue(wait_until(lambda: self.reconciled_by(pool), timeout=10))
        # for a few seconds every reconciler pass is by the lease holder, and the other never runs one
        seen = set()
        for _ in range(30):
            h = self.holder()
            self.assertEqual(h, leader, "the lease changed hands while both were alive")
            seen.add(self.reconciled_by(pool))
            time.sleep(0.1)
        self.assertEqual(seen, {leader})
        leader_pid = int(leader.split(":")[1])
        self.assertIn(leader_pid, pids)
        # the placement failure is recorded once, by one reconciler (no agents: module m1 has no servers)
        fails = sql(self.stack.var, "SELECT COUNT(*) FROM audit_log WHERE action = 'pool.placement_failed'"
                                    " AND target_id = '%d'" % pool)
        self.assertEqual(fails[0][0], "1")

        t0 = time.monotonic()
        os.kill(leader_pid, signal.SIGKILL)
        new = wait_until(lambda: (lambda h: h if h and h != leader else None)(self.holder()),
                         timeout=LEASE_SECONDS + 5, step=0.05)
        took = time.monotonic() - t0
        self.assertIsNotNone(new, "nobody took the lease over")
        self.assertEqual(int(new.split(":")[1]), (pids - {leader_pid}).pop())
        self.assertLessEqual(took, LEASE_SECONDS + 1.0, "takeover took %.2f s" % took)
        # and the survivor runs the reconciler
        self.assertTrue(wait_until(lambda: self.reconciled_by(pool) == new, timeout=5))
        os.makedirs(os.path.join(os.path.dirname(__file__), "..", "artifacts"), exist_ok=True)
        with open(os.path.join(os.path.dirname(__file__), "..", "artifacts", "leader-takeover.txt"), "w") as f:
            f.write("leader killed -> other bicd holds the lease after %.2f s (lease %d s)\n" % (took, LEASE_SECONDS))


if __name__ == "__main__":
    unittest.main()
