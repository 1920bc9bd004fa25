#!/usr/bin/env python3
"""End-to-end test of the BIC thin client (issue 13): build the image, boot it in QEMU with a
display and check from the screen what a user would see.

  python3 tests/thin/test_thin_client.py        (make test-thin-client; the "thin" layer of make test)

Steps, each a TAP line:
  1. build the image (appliance/thin-client/build.sh), unless BIC_THIN_ISO names an ISO whose
     PXE files sit in pxe/ next to it
  2. the ISO has the live system and GRUB for BIOS and UEFI; the PXE files are there
  3. a BIC stack on this machine (tests/lib/bictest.py Stack) with a TLS certificate for
     10.0.2.2 (the host as QEMU's user network shows it) from a private test CA
  4. boot the ISO (BIOS, GRUB menu) with a configuration disk (a FAT file system labelled
     BICCFG holding thin.cfg with the CCC's address and ca.pem, the test CA): a QEMU monitor
     `screendump` shows the portal's login page; the time from QEMU's start is the boot time
  5. the portal's page was loaded by the guest's browser (nginx's access log: the stylesheet
     and script, over TLS the CA vouches for)
  6. boot again over the PXE files (-kernel/-initrd, what a network boot loads) with a wrong
     CCC address on the kernel command line (it overrides thin.cfg) and bic.debug=1: the
     screen shows the "portal unreachable" page
  7. the root is read-only: / is an overlay over the squashfs with a tmpfs on top
  8. the terminal retries: once the address answers (the test starts a TCP relay to the
     stack there), the portal's login page replaces the unreachable page
  9. the browser is restarted when it exits (killed over the debug shell)
 10. the browser is restarted when it hangs: all its processes are stopped (SIGSTOP over the
     debug shell), the session's watchdog (Chromium's DevTools list on the loopback interface
     and a look at the screen, /usr/lib/bic-thin/pagecheck) notices and restarts it, and the
     login page comes back; no stopped process is left behind
Screens are kept as PNG in build/thin-client/test/ (look at them). The serial console, with
the host's timestamps, is in the same place; systemd-analyze of boot 2 is printed as comments.

The VM has a virtio-vga display: cage's wlroots needs a DRM driver with PRIME import, which
QEMU's default VGA (bochs-drm) lacks.

Skipped, with the reason, when BIC_SKIP_THIN=1, when not root, or when a tool is missing.
"""
import glob
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
OUT = os.path.join(REPO, "build", "thin-client")
TOOLS = ["qemu-system-x86_64", "xorriso", "mmdebstrap", "mksquashfs", "grub-mkrescue", "mformat",
         "mcopy", "openssl", "nginx", "mariadbd"]
BOOT_TIMEOUT = int(os.environ.get("BIC_THIN_BOOT_TIMEOUT", "600"))

n = 0
failed = False
T0 = time.monotonic()


def tap(ok, name, detail=""):
    global n, failed
    n += 1
    if not ok:
        failed = True
    print("%s %d - %s" % ("ok" if ok else "not ok", n, name), flush=True)
    for line in detail.rstrip().splitlines():
        print("# " + line, flush=True)


def skip_all(reason):
    print("ok 1 - thin client # SKIP %s" % reason)
    print("1..1")
    sys.exit(0)


def note(s):
    for line in s.rstrip().splitlines():
        print("# " + line, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def accel():
    # KVM here may be a PVM variant that runs firmware but hangs a stock kernel: TCG then.
    if os.path.exists("/dev/kvm") and not os.path.exists("/sys/module/kvm_pvm") and os.access("/dev/kvm", os.R_OK | os.W_OK):
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]


# ---- screens: QEMU's screendump writes PPM (P6); we read it and write PNG for people

def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    # header: P6 <w> <h> <max>, whitespace separated, then one whitespace byte and the pixels
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    if not m:
        raise ValueError("not a P6 PPM: %s" % path)
    w, h = int(m.group(1)), int(m.group(2))
    return w, h, data[m.end():m.end() + w * h * 3]


def write_png(path, w, h, px):
    raw = b"".join(b"\x00" + px[y * w * 3:(y + 1) * w * 3] for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def features(w, h, px, step=4):
    """Fractions of sampled pixels of the colours that tell the two screens apart.

    The portal's sign-in page (portal-user/common/bic.css, .auth-page at widths over 960 px):
    a dark blue hero on the left 5/11 (gradient #1d3aa8 -> #0d1c52), the light page (#f4f6fa)
    with a white card on the right, and the primary button (#2453d6) in the card.
    The unreachable page (appliance/thin-client/rootfs/usr/share/bic-thin/unreachable.html):
    a dark red-brown page (#3b1f1f) with an amber sign and title (#f59e0b, #fbbf24).
    """
    c = dict(left_blue=0, left_n=0, right_light=0, right_button=0, right_n=0, brown=0, amber=0, black=0, all=0)
    for y in range(0, h, step):
        row = y * w * 3
        for x in range(0, w, step):
            i = row + x * 3
            r, g, b = px[i], px[i + 1], px[i + 2]
            c["all"] += 1
            if r < 16 and g < 16 and b < 16:
                c["black"] += 1
            if abs(r - 59) < 24 and abs(g - 31) < 20 and abs(b - 31) < 20:
                c["brown"] += 1
            if r > 220 and 140 < g < 205 and b < 80:
                c["amber"] += 1
            if x < w * 0.40:
                c["left_n"] += 1
                if b > 70 and b > r + 50 and b > g + 30:
                    c["left_blue"] += 1
            elif x > w * 0.50:
                c["right_n"] += 1
                if r > 225 and g > 225 and b > 225:
                    c["right_light"] += 1
                if abs(r - 36) < 30 and abs(g - 83) < 30 and abs(b - 214) < 30:
                    c["right_button"] += 1
    f = {k: c[k] / max(1, c["all"]) for k in ("brown", "amber", "black")}
    f["left_blue"] = c["left_blue"] / max(1, c["left_n"])
    f["right_light"] = c["right_light"] / max(1, c["right_n"])
    f["right_button"] = c["right_button"] / max(1, c["right_n"])
    return f


def is_login(f):
    return f["left_blue"] > 0.6 and f["right_light"] > 0.5 and f["right_button"] > 0.005


def is_unreachable(f):
    return f["brown"] > 0.6 and f["amber"] > 0.002


def fmt(f):
    return " ".join("%s=%.3f" % (k, v) for k, v in sorted(f.items()))


# ---- a VM with a serial console (timestamped by us) and a monitor

class VM:
    def __init__(self, work, tag, args):
        self.work, self.tag = work, tag
        self.mon_path = os.path.join(work, tag + ".mon")
        self.ser_path = os.path.join(work, tag + ".serial.sock")
        self.log_path = os.path.join(work, tag + ".serial.log")
        self.lines = []  # (seconds since QEMU start, line)
        self.buf = b""
        self.lock = threading.Lock()
        cmd = ["qemu-system-x86_64", *accel(), "-m", "2048", "-smp", "2", "-vga", "virtio",
               "-display", "none", "-no-reboot",
               "-chardev", "socket,id=ser0,path=%s,server=on,wait=off" % self.ser_path, "-serial", "chardev:ser0",
               "-monitor", "unix:%s,server,nowait" % self.mon_path, *args]
        self.log = open(self.log_path, "w")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, tag + ".qemu.err"), "w"))
        self.ser = self._connect(self.ser_path)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _connect(self, path):
        for _ in range(100):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                return s
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("QEMU did not open %s (see %s.qemu.err)" % (path, self.tag))

    def _read(self):
        while True:
            try:
                data = self.ser.recv(4096)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.buf += data
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    t = time.monotonic() - self.t0
                    s = line.decode("utf-8", "replace").rstrip("\r")
                    self.lines.append((t, s))
                    self.log.write("[%7.2f] %s\n" % (t, s))
                    self.log.flush()

    def elapsed(self):
        return time.monotonic() - self.t0

    def serial_text(self):
        with self.lock:
            return "\n".join(s for _, s in self.lines) + "\n" + self.buf.decode("utf-8", "replace")

    def first(self, pattern):
        with self.lock:
            for t, s in self.lines:
                if re.search(pattern, s):
                    return t, s
        return None

    def send(self, text):
        self.ser.sendall(text.encode())

    def monitor(self, command):
        s = self._connect(self.mon_path)
        s.settimeout(30)
        try:
            s.sendall((command + "\n").encode())
            out = b""
            # the monitor echoes the command and prints a new prompt when done
            while out.count(b"(qemu)") < 2:
                d = s.recv(4096)
                if not d:
                    break
                out += d
        finally:
            s.close()
        return out.decode("utf-8", "replace")

    def screen(self, name):
        ppm = os.path.join(self.work, name + ".ppm")
        if os.path.exists(ppm):
            os.unlink(ppm)
        self.monitor("screendump " + ppm)
        for _ in range(50):
            if os.path.exists(ppm) and os.path.getsize(ppm) > 0:
                break
            time.sleep(0.1)
        w, h, px = read_ppm(ppm)
        return w, h, px

    def wait_screen(self, pred, timeout, name, every=3.0):
        """Screendumps until pred(features) holds; returns (seconds since start, features)."""
        deadline = time.monotonic() + timeout
        f = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            t = self.elapsed()
            try:
                w, h, px = self.screen(name)
            except (OSError, ValueError, RuntimeError):
                time.sleep(every)
                continue
            f = features(w, h, px)
            if pred(f):
                write_png(os.path.join(self.work, name + ".png"), w, h, px)
                return t, f
            time.sleep(every)
        try:
            w, h, px = self.screen(name)
            write_png(os.path.join(self.work, name + ".png"), w, h, px)
            f = features(w, h, px)
        except (OSError, ValueError, RuntimeError):
            pass
        return None, f

    def wait_serial(self, pattern, timeout, since=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for t, s in self.lines[since:]:
                    if re.search(pattern, s):
                        return t, s
            if self.proc.poll() is not None:
                return None
            time.sleep(0.5)
        return None

    def run(self, command, timeout=60):
        """Runs a command in the debug shell on the serial console; returns its output."""
        mark = "END%d" % int(time.monotonic() * 1000)
        with self.lock:
            start = len(self.lines)
        self.send("%s; echo %s-$?\n" % (command, mark))
        got = self.wait_serial(r"^%s-\d+" % mark, timeout, since=start)
        with self.lock:
            out = [s for _, s in self.lines[start:]]
        if got is None:
            return None
        out = out[:next(i for i, s in enumerate(out) if re.match(r"^%s-\d+" % mark, s)) + 1]
        # the shell's bracketed-paste and colour sequences and carriage returns are not output
        return "\n".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", line) for line in out[1:-1])

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.monitor("quit")
            except (OSError, RuntimeError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.ser.close()
        self.log.close()


def tail(vm, lines=60):
    return "--- last %d serial lines (%s) ---\n%s" % (lines, vm.log_path, "\n".join(vm.serial_text().splitlines()[-lines:]))


# ---- a TCP relay: the "wrong" address starts answering (tests the retry)

class Relay:
    def __init__(self, port, target):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.target = target
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def make_ca(tls_dir, work):
    """A private test CA and a certificate for 10.0.2.2 (the host from QEMU's user network)
    and 127.0.0.1 in the stack's TLS directory (bic-stack keeps an existing one)."""
    os.makedirs(tls_dir, exist_ok=True)
    ca_key, ca = os.path.join(work, "ca.key"), os.path.join(work, "ca.pem")
    key, csr, crt = os.path.join(tls_dir, "key.pem"), os.path.join(work, "srv.csr"), os.path.join(tls_dir, "cert.pem")
    ext = os.path.join(work, "srv.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:10.0.2.2,IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
        "-subj", "/CN=BIC thin client test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", ca_key, "-out", ca)
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=10.0.2.2", "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "30",
        "-extfile", ext, "-out", crt)
    os.chmod(key, 0o600)
    return ca


def config_disk(path, work, ccc, ca):
    """A FAT file system labelled BICCFG with thin.cfg and ca.pem (mtools: no mount needed)."""
    cfg = os.path.join(work, "thin.cfg")
    with open(cfg, "w") as f:
        f.write("# written by tests/thin/test_thin_client.py\nccc=%s\nkbd=us\nlang=en\nca=ca.pem\n" % ccc)
    with open(path, "wb") as f:
        f.truncate(4 * 1024 * 1024)
    subprocess.run(["mformat", "-i", path, "-v", "BICCFG", "::"], check=True, capture_output=True)
    subprocess.run(["mcopy", "-i", path, cfg, ca, "::"], check=True, capture_output=True)


def main():
    if os.environ.get("BIC_SKIP_THIN") == "1":
        skip_all("BIC_SKIP_THIN=1")
    if os.geteuid() != 0:
        skip_all("needs root (mmdebstrap, chroot)")
    missing = [t for t in TOOLS if not shutil.which(t) and not os.path.exists("/usr/sbin/" + t)]
    if missing:
        skip_all("missing tools: %s (make deps)" % " ".join(missing))
    import bictest
    bicd = os.path.join(REPO, "build", "bicd")
    if not os.path.exists(bicd):
        bicd = os.path.join(REPO, "build", "test", "bicd")
    if not os.path.exists(bicd):
        skip_all("no bicd built (make or make test-build)")

    # 1. the image
    iso = os.environ.get("BIC_THIN_ISO")
    if iso:
        tap(os.path.exists(iso), "image given: %s" % iso)
    else:
        t = time.monotonic()
        r = subprocess.run(["bash", os.path.join(REPO, "appliance", "thin-client", "build.sh")], capture_output=True, text=True)
        iso = os.path.join(OUT, "bic-thin-client-amd64.iso")
        tap(r.returncode == 0 and os.path.exists(iso), "make thin-client (%.0fs)" % (time.monotonic() - t),
            (r.stdout + r.stderr)[-3000:])
    if failed:
        print("1..%d" % n)
        return 1
    pxe = os.path.join(os.path.dirname(iso), "pxe")

    # 2. what is in it
    r = subprocess.run(["xorriso", "-indev", iso, "-find", "/", "-type", "f"], capture_output=True, text=True)
    files = set(re.findall(r"'(/[^']+)'", r.stdout))
    need = ["/live/vmlinuz", "/live/initrd.img", "/live/filesystem.squashfs", "/boot/grub/grub.cfg",
            "/boot/grub/i386-pc/eltorito.img", "/efi.img", "/bic/thin.cfg.example"]
    pxe_files = [os.path.join(pxe, f) for f in ("vmlinuz", "initrd.img", "filesystem.squashfs", "boot.ipxe")]
    size = os.path.getsize(iso) / 1e6
    lacking = [f for f in need if f not in files] + [p for p in pxe_files if not os.path.exists(p)]
    tap(not lacking, "ISO (BIOS + UEFI) and PXE files complete; ISO %.0f MB, squashfs %.0f MB" %
        (size, os.path.getsize(os.path.join(pxe, "filesystem.squashfs")) / 1e6 if os.path.exists(pxe_files[2]) else 0),
        "missing: %s" % " ".join(lacking) if lacking else "")

    work = os.path.join(OUT, "test")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    tmp = tempfile.mkdtemp(prefix="bic-thin-")

    # 3. a stack the guest can reach at 10.0.2.2 (QEMU's user network relays it to 127.0.0.1)
    stack = bictest.Stack(bicd=bicd)
    vm = None
    relay = None
    try:
        ca = make_ca(os.path.join(stack.var, "tls"), tmp)
        shutil.copy(ca, os.path.join(work, "test-ca.pem"))
        t = time.monotonic()
        try:
            stack.up()
            tap(True, "BIC stack up in %.0fs at https://127.0.0.1:%d (guest: https://10.0.2.2:%d)" %
                (time.monotonic() - t, stack.https_port, stack.https_port))
        except Exception as e:  # noqa: BLE001
            tap(False, "BIC stack up", str(e))
            print("1..%d" % n)
            return 1
        ccc = "https://10.0.2.2:%d" % stack.https_port
        cfgimg = os.path.join(work, "biccfg.img")
        config_disk(cfgimg, tmp, ccc, ca)
        drives = ["-drive", "file=%s,if=virtio,format=raw,readonly=on" % cfgimg]

        # 4. boot the ISO as a user would (firmware, GRUB), configured by the BICCFG disk
        vm = VM(work, "boot1", ["-cdrom", iso, "-boot", "d", *drives, "-nic", "user,model=virtio-net-pci"])
        t_login, f = vm.wait_screen(is_login, BOOT_TIMEOUT, "boot1-portal")
        reach = vm.first(r"bic-thin: .*portal reachable")
        launch = vm.first(r"bic-thin: .*chromium: https")
        detail = "screen features: %s\nscreen: %s" % (fmt(f) if f else "none", os.path.join(work, "boot1-portal.png"))
        if reach:
            detail += "\nportal reachable (serial, host clock): %.1fs: %s" % reach
        if launch:
            detail += "\nchromium started (serial): %.1fs" % launch[0]
        if t_login is None:
            detail += "\n" + tail(vm)
        tap(t_login is not None, "boot 1 (ISO, GRUB, BICCFG disk): the portal's login page on screen%s" %
            (" after %.0fs from QEMU start" % t_login if t_login else ""), detail)

        # 5. the guest's browser fetched the page's stylesheet and script from the stack
        log = os.path.join(stack.var, "log", "nginx-access.log")
        text = open(log, errors="replace").read() if os.path.exists(log) else ""
        css = re.search(r'"uri":"/common/bic.css","status":(200|304)', text)
        js = re.search(r'"uri":"/user.js","status":(200|304)', text)
        tap(bool(css and js), "the guest's browser loaded the portal over TLS signed by the configured CA",
            "" if css and js else "nginx access log:\n" + text[-2000:])
        vm.stop()
        vm = None

        # 6. over the PXE files, a wrong address on the kernel command line, debug shell
        wrong_port = free_port()
        append = ("boot=live quiet loglevel=3 console=tty0 console=ttyS0,115200n8 bic.debug=1 "
                  "bic.ccc=https://10.0.2.2:%d" % wrong_port)
        vm = VM(work, "boot2", ["-kernel", os.path.join(pxe, "vmlinuz"), "-initrd", os.path.join(pxe, "initrd.img"),
                                "-append", append, "-cdrom", iso, *drives, "-nic", "user,model=virtio-net-pci"])
        t_down, f = vm.wait_screen(is_unreachable, BOOT_TIMEOUT, "boot2-unreachable")
        detail = "screen features: %s\nscreen: %s" % (fmt(f) if f else "none", os.path.join(work, "boot2-unreachable.png"))
        if t_down is None:
            detail += "\n" + tail(vm)
        tap(t_down is not None, "boot 2 (kernel+initrd, wrong bic.ccc= overrides thin.cfg): the unreachable page%s" %
            (" after %.0fs" % t_down if t_down else ""), detail)

        # 7. read-only root, and systemd-analyze for the record
        vm.send("\n")
        out = vm.run("findmnt -n -o FSTYPE,OPTIONS / ; findmnt -n -o FSTYPE /run/live/rootfs/filesystem.squashfs; "
                     "findmnt -n -o FSTYPE,OPTIONS /run/live/overlay", 60) or ""
        ok = re.search(r"^overlay", out, re.M) and "squashfs" in out and re.search(r"^tmpfs", out, re.M)
        tap(bool(ok), "root file system: overlay of the squashfs and a tmpfs (nothing written to a disk)", out)
        sa = vm.run("systemd-analyze; systemd-analyze blame --no-pager | head -n 12; "
                    "systemd-analyze critical-chain --no-pager bic-kiosk.service", 90)
        if sa:
            note("systemd-analyze (boot 2, kernel+initrd without firmware/GRUB):\n" + sa)
        # what reading the root costs here: the raw medium, and a file through squashfs (zstd)
        io = vm.run("dd if=/dev/sr0 of=/dev/null bs=1M count=64 skip=128 iflag=direct 2>&1 | tail -n 1; "
                    "dd if=/usr/lib/x86_64-linux-gnu/libicudata.so.72.1 of=/dev/null bs=1M 2>&1 | tail -n 1", 180)
        if io:
            note("read speed in the guest (raw CD-ROM, then a file through the squashfs):\n" + io)

        # 8. the address starts answering: the portal replaces the unreachable page
        relay = Relay(wrong_port, stack.https_port)
        t1 = vm.elapsed()
        t_up, f = vm.wait_screen(is_login, 240, "boot2-recovered")
        tap(t_up is not None, "retry: the portal's login page %s after the address began to answer" %
            ("%.0fs" % (t_up - t1) if t_up else "never"),
            "screen features: %s\n%s" % (fmt(f) if f else "none", "" if t_up else tail(vm)))

        # 9. the browser restarts when it exits
        with vm.lock:
            mark = len(vm.lines)
        vm.run("pkill -KILL -x chromium; sleep 1; pgrep -x chromium | wc -l", 60)
        restarted = vm.wait_serial(r"bic-thin: .*chromium exited", 60, since=mark)
        t_back, f = vm.wait_screen(is_login, 240, "boot2-restarted") if restarted else (None, None)
        tap(bool(restarted and t_back), "the browser is restarted after it is killed (%s)" %
            ("login page again after %.0fs" % (t_back - restarted[0]) if restarted and t_back else "no"),
            "" if restarted and t_back else tail(vm))

        # 10. the watchdog: a browser that hangs (all its processes stopped, so it neither exits
        # nor answers) is restarted, and the page comes back
        with vm.lock:
            mark = len(vm.lines)
        shown = vm.wait_serial(r"bic-thin: .*page shown", 120, since=0)
        vm.run("pkill -STOP -x chromium; sleep 1; ps -o stat= -C chromium | sort | uniq -c", 60)
        t_stop = vm.elapsed()
        caught = vm.wait_serial(r"bic-thin: .*watchdog: .*restarting chromium", 240, since=mark)
        with vm.lock:
            mark = len(vm.lines)
        # the frozen browser's last frame stays on screen: wait for the new one's page first
        again = vm.wait_serial(r"bic-thin: .*page shown", 300, since=mark) if caught else None
        t_again, f = vm.wait_screen(is_login, 60, "boot2-watchdog") if again else (None, None)
        left = vm.run("echo STOPPED=$(ps -o stat= -C chromium | grep -c T)", 60) if t_again else None
        left = re.search(r"STOPPED=(\d+)", left or "")
        left = int(left.group(1)) if left else None
        tap(bool(shown and caught and t_again and left == 0),
            "a hung browser is restarted by the watchdog (%s)" %
            ("noticed %.0fs after the freeze, login page again %.0fs after that" % (caught[0] - t_stop, again[0] - caught[0])
             if caught and again and t_again else "no"),
            "page-shown line: %s\nwatchdog line: %s\nstopped chromium processes left: %s\n%s" %
            (shown[1] if shown else None, caught[1] if caught else None, left, "" if caught and t_again else tail(vm)))
    finally:
        if relay:
            relay.close()
        if vm:
            vm.stop()
        stack.down()
        stack.remove()
        shutil.rmtree(tmp, ignore_errors=True)
        for p in glob.glob(os.path.join(work, "*.ppm")):
            os.unlink(p)
    note("screens and serial logs: %s (%.0fs in all)" % (work, time.monotonic() - T0))
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
