/*
 * bic-consoled - the console relay: nginx hands it each checked console websocket on a unix
 * socket; it connects to the desktop's QEMU VNC websocket and relays, closing a console whose
 * browser sends a frame above the limit or breaks the websocket framing (fcgi/wsrelay.h).
 *
 *   bic-consoled --socket PATH [--mode 0660] [--max-frame BYTES] [--max-consoles N]
 *                [--connect-timeout MS] [--pidfile PATH]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "version.h"
#include "wsrelay.h"

static void usage(FILE *to)
{
    fputs("usage: bic-consoled --socket PATH [--mode 0660] [--max-frame BYTES (262144)]\n"
          "                    [--max-consoles N (4096)] [--connect-timeout MS (5000)]\n"
          "                    [--pidfile PATH]\n",
          to);
}

static int number(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    wsrelay_config cfg = {.socket_mode = 0660,
                          .max_frame = 256 * 1024,
                          .max_consoles = 4096,
                          .connect_timeout_ms = 5000,
                          .head_timeout_ms = 10000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--version")) {
            printf("bic-consoled %s (%s)\n", BIC_VERSION, BIC_GIT_REV);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        long long n = 0;
        int bad = 0;
        if (!strcmp(a, "--socket")) cfg.socket_path = v;
        else if (!strcmp(a, "--pidfile")) cfg.pidfile = v;
        else if (!strcmp(a, "--mode")) bad = number(v, 0, 0777, &n), cfg.socket_mode = (unsigned)n;
        else if (!strcmp(a, "--max-frame"))
            bad = number(v, 125, 1LL << 40, &n), cfg.max_frame = (uint64_t)n;
        else if (!strcmp(a, "--max-consoles"))
            bad = number(v, 1, 1000000, &n), cfg.max_consoles = (int)n;
        else if (!strcmp(a, "--connect-timeout"))
            bad = number(v, 100, 600000, &n), cfg.connect_timeout_ms = (int)n;
        else {
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "bic-consoled: %s: not a valid value: %s\n", a, v);
            return 2;
        }
    }
    if (!cfg.socket_path) {
        usage(stderr);
        return 2;
    }
    /* two descriptors per console, plus a few */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return wsrelay_run(&cfg);
}
