"""Secrets stay secret (issue 12): after the API tests ran on the shared stack, no log file the
stack wrote holds a secret the tests used.

tests/lib/bictest.py records every secret a test client sent or received (passwords, session,
refresh and CSRF cookies, agent credentials, enrollment tokens, console tickets, VNC passwords,
TOTP secrets, recovery codes) in <var>/test-secrets.txt. This module then reads every file under
<var>/log (nginx access and error logs, bicd's access and error logs and its stdout/stderr,
MariaDB's error log, migration and useradd output, sanitizer reports) and under <var>/nginx, and
looks for each secret as it is, percent-encoded and JSON-escaped, and for the part of it that
alone would let someone in (a JWT's signature, the credential after "<server id>.").

It is named test_zzz_* so that the runner, which loads tests/api/test_*.py in sorted order, runs
it after every other module, test_zz_db_outage.py included: the outage writes bicd's and
MariaDB's error paths (reconnects, failed statements), which are exactly the logs where a
careless message would put a statement's parameters. It only reads files, so the state the
outage leaves behind does not matter.
"""
import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import SECRETS_FILE, Client  # noqa: E402


def needles(secret):
    """What to look for: the secret, its encodings, and the parts of it that are secrets alone."""
    out = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
           json.dumps(secret)[1:-1]}
    parts = secret.split(".")
    if len(parts) == 3 and all(parts):  # a JWT: its signature alone proves nothing, but is unique
        out.add(parts[2])
    if len(parts) == 2 and parts[0].isdigit():  # "<server id>.<credential>"
        out.add(parts[1])
    return {n for n in out if len(n) >= 8}


def log_files(var):
    for top in ("log", "nginx"):
        for root, _, files in os.walk(os.path.join(var, top)):
            for name in files:
                p = os.path.join(root, name)
                if os.path.isfile(p) and not os.path.islink(p):
                    yield p


class SecretsStaySecret(unittest.TestCase):
    def test_no_log_holds_a_secret_the_tests_used(self):
        var = os.environ["BIC_TEST_VAR"]
        admin = Client()
        admin.login_admin()  # at least this run's admin password and session are recorded
        path = os.path.join(var, SECRETS_FILE)
        with open(path) as f:
            secrets = {line.rstrip("\n") for line in f if line.strip()}
        self.assertIn(admin.admin_password(), secrets, "the bictest hook did not record the admin password")
        self.assertTrue(any(s.count(".") == 2 for s in secrets), "no session token was recorded")
        files = list(log_files(var))
        names = {os.path.basename(p) for p in files}
        for must in ("nginx-access.log", "bicd-access.log", "bicd-error.log", "mariadb.err"):
            self.assertIn(must, names, "the stack wrote no %s: nothing to search" % must)
        self.assertGreater(os.path.getsize(os.path.join(var, "log", "bicd-access.log")), 0)
        found = []
        looked = 0
        for p in files:
            with open(p, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            looked += len(text)
            for s in secrets:
                for n in needles(s):
                    at = text.find(n)
                    if at >= 0:
                        line = text.count("\n", 0, at) + 1
                        ctx = text[max(0, at - 80):at + len(n) + 40].replace(n, "<SECRET %d chars>" % len(n))
                        found.append("%s:%d: %s" % (os.path.relpath(p, var), line, ctx.replace("\n", " ")))
                        break
        self.assertEqual(found, [], "secrets in the logs (%d secrets, %d files, %d bytes searched)"
                         % (len(secrets), len(files), looked))
        print("  searched %d files (%d bytes) for %d secrets" % (len(files), looked, len(secrets)),
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
