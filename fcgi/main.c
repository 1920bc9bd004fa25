/*
 * bicd - the BIC control plane FastCGI application (CCC, xCenter, bCenter).
 *
 *   bicd [-c FILE] serve      serve FastCGI on the configured unix socket
 *   bicd [-c FILE] migrate    apply database migrations from [migrate] dir
 *   bicd [-c FILE] useradd    create or reset a local account (password on stdin)
 *   bicd [-c FILE] bench-argon2 [N]  time password hashing (used by make bench)
 *   bicd [-c FILE] bench-alloc ...   time SKIP LOCKED allocations (used by make bench)
 *   bicd [-c FILE] bench-place ...   concurrent placements of one pool (tests, make bench)
 *   bicd routes               print the route table as JSON
 *   bicd version              print the version
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_cli.h"
#include "bench_alloc.h"
#include "bench_place.h"
#include "config.h"
#include "log.h"
#include "migrate.h"
#include "password.h"
#include "routes.h"
#include "server.h"
#include "sign.h"
#include "token.h"
#include "version.h"

static void usage(FILE *to)
{
    fputs("usage: bicd [-c config.ini] serve|migrate|routes|version|useradd ...\n"
          "  serve     serve FastCGI on [server] socket until SIGTERM\n"
          "  migrate   apply sql migrations ([migrate] dir) as the migration account\n"
          "  routes    print the route table as JSON\n"
          "  useradd   create or update a local account (see bicd useradd -h)\n"
          "  bench-argon2 [N]  time N password hashes; prints the sign-in bound\n"
          "  bench-alloc [--threads N --seconds S --rows R]  raw allocation rate\n"
          "  bench-place --pool ID [--count N --threads T]  concurrent placements\n"
          "Every [section] key can be overridden by BIC_<SECTION>_<KEY>.\n",
          to);
}

static int write_pidfile(const char *path)
{
    if (!path || !*path) return 0;
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f);
}

int main(int argc, char **argv)
{
    const char *cfg_path = getenv("BIC_CONFIG");
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "-c")) {
        cfg_path = argv[i + 1];
        i += 2;
    }
    const char *cmd = i < argc ? argv[i] : "serve";
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("bicd %s (%s)\n", BIC_VERSION, BIC_GIT_REV);
        return 0;
    }
    if (!strcmp(cmd, "routes")) {
        json_t *r = routes_json();
        json_dumpf(r, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(r);
        return 0;
    }

    bic_config cfg;
    char err[512];
    if (config_load(&cfg, cfg_path, err, sizeof(err)) < 0) {
        fprintf(stderr, "bicd: %s\n", err);
        return 2;
    }
    int rc;
    if (!strcmp(cmd, "serve")) {
        if (log_open(cfg.log_access, cfg.log_error) < 0) {
            perror("bicd: cannot open log files");
            config_free(&cfg);
            return 1;
        }
        /*
         * Large buffers (above 1 MiB) are mapped and returned when freed instead of staying
         * in a thread's heap. Password hashing keeps its own work buffers, one per hashing
         * slot (password.c); a stored hash of a higher cost still borrows its memory here.
         */
        mallopt(M_MMAP_THRESHOLD, 1 << 20);
        password_init(&cfg);
        if (token_init(&cfg) < 0) {
            fprintf(stderr, "bicd: cannot load the token key %s\n", cfg.auth_secret_file);
            config_free(&cfg);
            return 1;
        }
        if (sign_init(&cfg) < 0)
            fprintf(stderr, "bicd: no task signing key (%s): agents cannot enroll\n",
                    cfg.auth_sign_key_file);
        if (write_pidfile(cfg.server_pidfile) < 0) perror("bicd: pidfile");
        rc = server_run(&cfg);
        if (cfg.server_pidfile[0]) unlink(cfg.server_pidfile);
        log_close();
    } else if (!strcmp(cmd, "migrate")) {
        rc = migrate_run(&cfg, i + 1 < argc ? argv[i + 1] : cfg.migrate_dir);
    } else if (!strcmp(cmd, "bench-argon2")) {
        rc = admin_cli_bench_argon2(&cfg, argc - i, argv + i);
    } else if (!strcmp(cmd, "bench-alloc")) {
        rc = bench_alloc_run(&cfg, argc - i, argv + i);
    } else if (!strcmp(cmd, "bench-place")) {
        rc = bench_place_run(&cfg, argc - i, argv + i);
    } else if (!strcmp(cmd, "useradd")) {
        rc = admin_cli_useradd(&cfg, argc - i, argv + i);
    } else {
        usage(stderr);
        rc = 2;
    }
    config_free(&cfg);
    return rc;
}
