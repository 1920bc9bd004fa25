"""Least privilege (issue 12).

- The runtime database account (bicd.ini [database] user, what every bicd worker and the leader
  use) may only read and change rows of the bic schema: no CREATE, ALTER, DROP, TRUNCATE, GRANT,
  no FILE (LOAD_FILE, SELECT ... INTO OUTFILE, LOAD DATA INFILE), no other schema.
- Migrations use a separate account ([migrate] user) that holds the DDL rights the runtime lacks.
- No code in fcgi/ or agent/ starts a program through a shell: no system(), popen(), execl*/
  execvp* (which search PATH or take a shell command), wordexp(), and no "/bin/sh", "sh -c" or
  "bash" in the sources. Programs, if ever started, are started with execv/execve/posix_spawn and
  an argv array.
"""
import configparser
import glob
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from bictest import REPO  # noqa: E402


def stack_ini():
    var = os.environ["BIC_TEST_VAR"]
    ini = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    ini.read(os.path.join(var, "etc", "bicd.ini"))
    return var, ini


def sql(var, user, password, statement):
    """Runs statement as user over the stack's socket; returns (ok, output)."""
    r = subprocess.run(["mariadb", "--no-defaults", "-S", os.path.join(var, "run", "mysqld.sock"), "-u", user,
                        "-p" + password, "-N", "-B", "bic", "-e", statement], capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


class DatabaseAccounts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.var, ini = stack_ini()
        cls.user, cls.password = ini["database"]["user"], ini["database"]["password"]
        cls.muser, cls.mpassword = ini["migrate"]["user"], ini["migrate"]["password"]
        cls.tmp = os.path.join(cls.var, "least-privilege-outfile.txt")

    def runtime(self, statement):
        return sql(self.var, self.user, self.password, statement)

    def test_the_runtime_account_works_on_rows(self):
        ok, out = self.runtime("SELECT COUNT(*) FROM users")
        self.assertTrue(ok, out)
        self.assertGreaterEqual(int(out), 1)

    def test_the_runtime_account_cannot_change_the_schema(self):
        with self.subTest("create"):
            ok, out = self.runtime("CREATE TABLE lp_probe (a INT)")
            self.assertFalse(ok, out)
            self.assertIn("denied", out)
        for stmt in ("ALTER TABLE users ADD COLUMN lp_probe INT", "DROP TABLE audit_log", "TRUNCATE TABLE users",
                     "CREATE INDEX lp_probe ON users (id)", "DROP DATABASE bic", "CREATE DATABASE lp_probe",
                     "CREATE VIEW lp_probe AS SELECT 1", "CREATE PROCEDURE lp_probe() SELECT 1",
                     "GRANT SELECT ON bic.* TO '%s'@'localhost'" % self.user,
                     "CREATE USER 'lp_probe'@'localhost'", "SELECT COUNT(*) FROM mysql.user",
                     "LOCK TABLES users WRITE"):
            with self.subTest(stmt):
                ok, out = self.runtime(stmt)
                self.assertFalse(ok, "%s was allowed: %s" % (stmt, out))
                self.assertRegex(out, r"ERROR (1044|1045|1142|1143|1227|1370|1410)", out)
        # the schema is as it was
        ok, out = sql(self.var, self.muser, self.mpassword, "SHOW COLUMNS FROM users LIKE 'lp_probe'")
        self.assertTrue(ok, out)
        self.assertEqual(out, "")

    def test_the_runtime_account_has_no_file_privilege(self):
        ok, out = self.runtime("SELECT LOAD_FILE('/etc/passwd') IS NULL, LOAD_FILE('%s') IS NULL"
                               % os.path.join(self.var, "etc", "bicd.ini"))
        self.assertTrue(ok, out)
        self.assertEqual(out.split(), ["1", "1"], "LOAD_FILE read a file")
        ok, out = self.runtime("SELECT username FROM users INTO OUTFILE '%s'" % self.tmp)
        self.assertFalse(ok, out)
        self.assertIn("FILE privilege", out)
        self.assertFalse(os.path.exists(self.tmp))
        ok, out = self.runtime("LOAD DATA INFILE '/etc/hostname' INTO TABLE users")
        self.assertFalse(ok, out)
        ok, out = self.runtime("SHOW GRANTS")
        self.assertTrue(ok, out)
        for priv in ("ALL PRIVILEGES", "FILE", "CREATE", "ALTER", "DROP", "GRANT OPTION", "SUPER", "PROCESS"):
            self.assertNotRegex(out, r"\b%s\b" % priv, out)
        self.assertRegex(out, r"GRANT SELECT, INSERT, UPDATE, DELETE ON `bic`\.\*", out)

    def test_migrations_use_their_own_account_with_the_ddl_rights(self):
        self.assertNotEqual(self.user, self.muser)
        self.assertNotEqual(self.password, self.mpassword)
        ok, out = sql(self.var, self.muser, self.mpassword, "SHOW GRANTS")
        self.assertTrue(ok, out)
        self.assertRegex(out, r"GRANT (ALL PRIVILEGES|.*\bCREATE\b.*\bALTER\b.*) ON `bic`\.\*", out)
        self.assertNotRegex(out, r"ON \*\.\* .*(ALL PRIVILEGES|FILE)|GRANT (ALL PRIVILEGES|.*FILE.*) ON \*\.\*", out)
        # and bicd's runtime account cannot log in as the migration account
        ok, out = sql(self.var, self.muser, self.password, "SELECT 1")
        self.assertFalse(ok, out)


# ---- no shell in the C sources

FORBIDDEN_CALLS = r"\b(system|popen|execl|execlp|execle|execvp|execvpe|wordexp)\s*\("
# "-c" counts only as an element of an argument list with something after it (a shell's
# command: {shell, "-c", cmd}); as the last argument of a comparison (strcmp(argv[i], "-c"),
# option parsing) it is no shell.
FORBIDDEN_TEXT = r"/bin/sh\b|/bin/bash\b|\"sh\"|\"bash\"|\bsh -c\b|\"-c\"\s*,"


def strip_comments(src):
    """C source without comments (string literals kept: they are what a shell would be given)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * src.count("\n", i, j))
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def shell_uses(src):
    code = strip_comments(src)
    hits = []
    for ln, line in enumerate(code.splitlines(), 1):
        if re.search(FORBIDDEN_CALLS, line) or re.search(FORBIDDEN_TEXT, line):
            hits.append((ln, line.strip()))
    return hits


class NoShell(unittest.TestCase):
    def test_the_scanner_finds_what_it_must(self):
        self.assertEqual(len(shell_uses('int f(void) { return system("ls"); }')), 1)
        self.assertEqual(len(shell_uses('FILE *p = popen(cmd, "r");')), 1)
        self.assertEqual(len(shell_uses('char *a[] = {"/bin/sh", "-c", cmd, NULL}; execv(a[0], a);')), 1)
        self.assertEqual(len(shell_uses('execlp("qemu-img", "qemu-img", NULL);')), 1)
        self.assertEqual(shell_uses('/* system("x") */ // popen(\nint filesystem(void);'), [])
        self.assertEqual(shell_uses('char *argv[] = {"/usr/bin/qemu-img", "info", path, NULL};'), [])
        # "-c" followed by a command is a shell's, wherever the shell's name comes from
        self.assertEqual(len(shell_uses('char *a[] = {shell, "-c", cmd, NULL};')), 1)
        self.assertEqual(len(shell_uses('posix_spawn(&pid, SH, NULL, NULL, (char *[]){SH, "-c" , line, 0}, env);')), 1)
        # option parsing is not
        self.assertEqual(shell_uses('if (!strcmp(argv[i], "-c")) cfg = argv[++i];'), [])
        self.assertEqual(shell_uses('if (i + 1 < argc && !strcmp(argv[i], "-c")) {'), [])

    def test_no_program_is_started_through_a_shell(self):
        files = sorted(glob.glob(os.path.join(REPO, "fcgi", "*.[ch]")) + glob.glob(os.path.join(REPO, "agent", "*.[ch]")))
        self.assertGreater(len(files), 50)
        found = []
        for p in files:
            with open(p, errors="replace") as f:
                for ln, line in shell_uses(f.read()):
                    found.append("%s:%d: %s" % (os.path.relpath(p, REPO), ln, line))
        self.assertEqual(found, [], "programs must be started with argv (execv/posix_spawn), never a shell")


if __name__ == "__main__":
    unittest.main()
