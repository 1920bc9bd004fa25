#!/usr/bin/env python3
"""BIC's one test runner: every layer, one summary line.

Layers, in order:
  unit     C unit tests (cmocka, built with ASan+UBSan) from build/test/unit/
  fuzz     a short run of each libFuzzer target in tests/fuzz/ (skipped without clang)
  api      Python tests in tests/api/ against a fresh stack (MariaDB, bicd, nginx) on free
           loopback ports in a temporary directory, torn down afterwards
  browser  node tests in tests/browser/ driving Debian's Chromium with playwright-core
           (skipped, with the reason, when Chromium or playwright-core is missing)
  appliance  ISO build, unattended QEMU install and boot, package purge/reinstall
           (tests/appliance/; skipped without root or tools, or with BIC_SKIP_APPLIANCE=1)
  fault    Jepsen-style fault tests in tests/fault/, each with its own stack
  thin     the thin client image built and booted in QEMU against a local stack (tests/thin/;
           skipped without root or tools, or with BIC_SKIP_THIN=1)

Ends with:  N passed, N failed, N skipped
Exit status 0 only when nothing failed.
"""
import glob
import importlib.util
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))
import bictest  # noqa: E402

counts = {"passed": 0, "failed": 0, "skipped": 0}
failures = []


def record(kind, name, detail=""):
    counts[kind] += 1
    if kind == "failed":
        failures.append((name, detail))
    mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[kind]
    print("  %s %s%s" % (mark, name, (" -- " + detail.splitlines()[0]) if detail and kind != "passed" else ""),
          flush=True)


def parse_tap(layer, text):
    """Counts TAP lines: 'ok N - name', 'not ok N - name', '# SKIP' directives."""
    seen = 0
    for line in text.splitlines():
        m = re.match(r"\s*(not ok|ok)\s+\d+\s*-?\s*(.*)", line)
        if not m:
            continue
        seen += 1
        name = "%s: %s" % (layer, m.group(2).split(" # ")[0].strip())
        directive = m.group(2).lower()
        if "# skip" in directive:
            record("skipped", name, m.group(2).split("#", 1)[1].strip())
        elif m.group(1) == "ok":
            record("passed", name)
        else:
            record("failed", name, text[-2000:])
    return seen


def run_unit():
    print("unit tests (cmocka, ASan+UBSan)", flush=True)
    bins = sorted(glob.glob(os.path.join(REPO, "build", "test", "unit", "test_*")))
    bins = [b for b in bins if os.access(b, os.X_OK) and not b.endswith(".d")]
    if not bins:
        record("failed", "unit: no unit test binaries were built (run make test-build)")
        return
    for b in bins:
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP", BIC_REPO=REPO)
        r = subprocess.run([b], capture_output=True, text=True, env=env, cwd=REPO)
        n = parse_tap(os.path.basename(b), r.stdout)
        if n == 0 or (r.returncode != 0 and "not ok" not in r.stdout):
            record("failed", os.path.basename(b) + ": crashed or printed no results",
                   (r.stdout + r.stderr)[-3000:])


class CountingResult(unittest.TextTestResult):
    def addSuccess(self, test):
        super().addSuccess(test)
        record("passed", "api: " + test.id())

    def addFailure(self, test, err):
        super().addFailure(test, err)
        record("failed", "api: " + test.id(), self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        record("failed", "api: " + test.id(), self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            record("failed", "api: " + subtest.id(), self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        record("skipped", "api: " + test.id(), reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        record("failed", "api: " + test.id(), "expected failures are not allowed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        record("failed", "api: " + test.id(), "unexpected success")


def load_api_suite(pattern):
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for path in sorted(glob.glob(os.path.join(HERE, "api", pattern))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        suite.addTests(loader.loadTestsFromModule(mod))
    return suite


def run_integration(stack):
    """C tests of the database layer against the stack's MariaDB (tests/integration/)."""
    for b in sorted(glob.glob(os.path.join(REPO, "build", "test", "integration", "test_*"))):
        if not os.access(b, os.X_OK) or b.endswith(".d"):
            continue
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP", BIC_CONFIG=os.path.join(stack.var, "etc", "bicd.ini"))
        r = subprocess.run([b], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
        n = parse_tap("integration: " + os.path.basename(b), r.stdout)
        if n == 0 or (r.returncode != 0 and "not ok" not in r.stdout):
            record("failed", "integration: " + os.path.basename(b) + ": crashed or printed no results",
                   (r.stdout + r.stderr)[-3000:])


def run_api(pattern):
    print("API tests against a fresh stack", flush=True)
    stack = bictest.Stack()
    t0 = time.monotonic()
    try:
        stack.up()
    except Exception as e:  # the whole layer fails, loudly
        record("failed", "api: stack start", str(e))
        stack.down()
        return
    print("  stack up in %.1fs at https://127.0.0.1:%d (%s)" % (time.monotonic() - t0, stack.https_port, stack.var),
          flush=True)
    os.environ.update(stack.export())
    try:
        run_integration(stack)
        suite = load_api_suite(pattern)
        runner = unittest.TextTestRunner(stream=open(os.devnull, "w"), resultclass=CountingResult, verbosity=0)
        runner.run(suite)
    finally:
        stack.down()
        asan = glob.glob(os.path.join(stack.var, "log", "asan*")) + glob.glob(os.path.join(stack.var, "log", "ubsan*"))
        reports = [p for p in asan if os.path.getsize(p) > 0]
        out = os.path.join(stack.var, "log", "bicd.out")
        if os.path.exists(out) and re.search(r"Sanitizer|runtime error:", open(out, errors="replace").read()):
            reports.append(out)
        if reports:
            text = "".join(open(p).read()[:4000] for p in reports)
            record("failed", "api: bicd ran clean under ASan/UBSan", text)
        else:
            record("passed", "api: bicd ran clean under ASan/UBSan")
        if os.environ.get("BIC_KEEP_TEST_VAR") != "1" and not failures:
            stack.remove()
        else:
            print("  kept %s for inspection" % stack.var)


def run_browser():
    print("browser tests (Chromium)", flush=True)
    tests = sorted(glob.glob(os.path.join(HERE, "browser", "*.test.mjs")))
    if not tests:
        return
    chromium = "/usr/bin/chromium"
    pw = os.path.join(HERE, "browser", "node_modules", "playwright-core")
    reason = None
    if not os.path.exists(chromium):
        reason = "Chromium is not installed (/usr/bin/chromium; make deps installs it)"
    elif not os.path.isdir(pw):
        reason = "playwright-core is not installed in tests/browser (make deps installs it)"
    elif subprocess.run(["node", "--version"], capture_output=True).returncode != 0:
        reason = "node is not installed"
    if reason:
        for t in tests:
            record("skipped", "browser: " + os.path.basename(t), reason)
        return
    stack = bictest.Stack()
    try:
        stack.up()
    except Exception as e:
        record("failed", "browser: stack start", str(e))
        stack.down()
        return
    env = dict(os.environ, **stack.export())
    try:
        for t in tests:
            r = subprocess.run(["node", "--test", "--test-reporter=tap", t], capture_output=True, text=True,
                               env=env, cwd=os.path.join(HERE, "browser"), timeout=600)
            if parse_tap("browser: " + os.path.basename(t), r.stdout) == 0:
                record("failed", "browser: " + os.path.basename(t), (r.stdout + r.stderr)[-3000:])
    finally:
        stack.down()
        if not failures:
            stack.remove()


def run_appliance():
    """Issue 10: builds the ISO, installs it unattended in a QEMU VM and checks the installed
    system (tests/appliance/test_appliance.py; ~9 min under TCG from empty caches, up to ~15 on
    a busy machine; docs/install.md). It prints TAP and skips itself, with the reason, when
    BIC_SKIP_APPLIANCE=1, without root or without its tools."""
    print("appliance (ISO build, unattended install and boot in QEMU)", flush=True)
    t = os.path.join(HERE, "appliance", "test_appliance.py")
    try:
        r = subprocess.run([sys.executable, t], capture_output=True, text=True, cwd=REPO, timeout=60 * 60)
        out = r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        r, out = None, "timed out after 60 min\n%s" % (e.stdout or "")
    if parse_tap("appliance", out) == 0 or (r is not None and r.returncode != 0 and "not ok" not in out):
        record("failed", "appliance: crashed or printed no results", out[-3000:])


def run_thin():
    """Issue 13: builds the thin client and boots it in QEMU against a local stack; screenshots
    must show the portal's login page, and the unreachable page for a wrong address
    (tests/thin/test_thin_client.py; docs/thin-client.md). Prints TAP; skips itself, with the
    reason, when BIC_SKIP_THIN=1, without root or without its tools."""
    print("thin client (image build, boots in QEMU to the portal)", flush=True)
    t = os.path.join(HERE, "thin", "test_thin_client.py")
    try:
        r = subprocess.run([sys.executable, t], capture_output=True, text=True, cwd=REPO, timeout=60 * 60)
        out = r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        r, out = None, "timed out after 60 min\n%s" % (e.stdout or "")
    if parse_tap("thin", out) == 0 or (r is not None and r.returncode != 0 and "not ok" not in out):
        record("failed", "thin: crashed or printed no results", out[-3000:])


def run_fuzz():
    """Issue 12: a smoke of every libFuzzer target in tests/fuzz/ (one test each): builds them
    with `make fuzz-build` (clang) and runs each for BIC_FUZZ_SECONDS (default 10) from its
    committed seeds; a crash, leak, timeout or broken invariant fails it (`make fuzz` runs longer).
    Skipped, with the reason, when clang cannot build a libFuzzer program here."""
    print("fuzz smoke (libFuzzer, ASan+UBSan)", flush=True)
    targets = sorted(os.path.splitext(os.path.basename(p))[0]
                     for p in glob.glob(os.path.join(HERE, "fuzz", "fuzz_*.c")))
    if not targets:
        return
    reason = None
    cc = os.environ.get("FUZZ_CC", "clang")
    probe = os.path.join(REPO, "build", "fuzz", "probe")
    os.makedirs(os.path.dirname(probe), exist_ok=True)
    try:
        r = subprocess.run([cc, "-fsanitize=fuzzer,address,undefined", "-x", "c", "-", "-o", probe],
                           input="int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)"
                                 "{(void)d;(void)n;return 0;}\n",
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            reason = "%s cannot build a libFuzzer program: %s" % (cc, (r.stderr.strip().splitlines() or ["?"])[-1])
    except FileNotFoundError:
        reason = "%s is not installed (make deps installs clang)" % cc
    if reason:
        for t in targets:
            record("skipped", "fuzz: " + t, reason)
        return
    r = subprocess.run(["make", "-s", "-j%d" % max(1, os.cpu_count() or 1), "fuzz-build"], cwd=REPO,
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        for t in targets:
            record("failed", "fuzz: " + t, "make fuzz-build failed:\n" + (r.stdout + r.stderr)[-3000:])
        return
    secs = os.environ.get("BIC_FUZZ_SECONDS", "10")
    for t in targets:
        r = subprocess.run(["bash", os.path.join(HERE, "fuzz", "run.sh"), t, secs], cwd=REPO,
                           capture_output=True, text=True, timeout=int(secs) + 300)
        runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
        if r.returncode == 0 and runs:
            record("passed", "fuzz: %s (%s runs in %s s)" % (t, runs.group(1), secs))
        else:
            record("failed", "fuzz: " + t, "exit %d; the input is in build/fuzz/artifacts/\n%s"
                   % (r.returncode, r.stderr[-3000:]))


def run_fault(pattern):
    """Issue 12: the Jepsen-style fault tests in tests/fault/ (allocation safety while bicd and
    MariaDB are killed and paused; heartbeats under load). Each test class starts and stops its
    own stack. CI mode by default (a few minutes); BIC_FAULTS_LONG=1 for the long manual run."""
    print("fault tests (each starts its own stack)", flush=True)

    class FaultResult(unittest.TextTestResult):
        def addSuccess(self, test):
            super().addSuccess(test)
            record("passed", "fault: " + test.id())

        def addFailure(self, test, err):
            super().addFailure(test, err)
            record("failed", "fault: " + test.id(), self._exc_info_to_string(err, test))

        def addError(self, test, err):
            super().addError(test, err)
            record("failed", "fault: " + test.id(), self._exc_info_to_string(err, test))

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            record("skipped", "fault: " + test.id(), reason)

    suite = unittest.TestSuite()
    for path in sorted(glob.glob(os.path.join(HERE, "fault", pattern))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        suite.addTests(unittest.TestLoader().loadTestsFromModule(mod))
    unittest.TextTestRunner(stream=open(os.devnull, "w"), resultclass=FaultResult, verbosity=0).run(suite)


def main():
    layers = os.environ.get("BIC_TEST_LAYERS", "unit,fuzz,api,fault,browser,appliance,thin").split(",")
    pattern = os.environ.get("BIC_TEST_PATTERN", "test_*.py")
    t0 = time.monotonic()
    if "unit" in layers:
        run_unit()
    if "fuzz" in layers:
        run_fuzz()
    if "api" in layers:
        run_api(pattern)
    if "browser" in layers:
        run_browser()
    if "appliance" in layers:
        run_appliance()
    if "fault" in layers:
        run_fault(pattern)
    if "thin" in layers:
        run_thin()
    if failures:
        print("\nFailures:")
        for name, detail in failures:
            print("--- " + name)
            print(detail.rstrip()[-3000:])
    print("\ntests took %.0fs" % (time.monotonic() - t0))
    print("%d passed, %d failed, %d skipped" % (counts["passed"], counts["failed"], counts["skipped"]))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
