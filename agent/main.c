/*
 * bic-agent - the BIC node agent on a bServer (docs/agent-protocol.md).
 *
 *   bic-agent [-c agent.ini] run      the daemon: enrollment, heartbeats, events, tasks
 *   bic-agent --fleet N [--desktops D] [--threads K] [-c agent.ini] run
 *                                      N simulated bServers in one process, each with D
 *                                      running test-driver domains (load tests; ag_fleet.h)
 *   bic-agent [-c agent.ini] [-r ROOT] [-u URI] facts
 *                                      print the host facts sent at enrollment, as JSON
 *   bic-agent version
 *
 * Configuration: [agent] keys of agent.ini, each overridable by BIC_AGENT_<KEY>
 * (see agent/ag_config.h). The log is JSON lines on stderr; BIC_AGENT_LOG=debug
 * shows more. SIGTERM and SIGINT stop the daemon; SIGHUP reloads nothing.
 */
#include <curl/curl.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_config.h"
#include "ag_daemon.h"
#include "ag_facts.h"
#include "ag_fleet.h"
#include "ag_hv.h"
#include "ag_log.h"
#include "version.h"

static void usage(void)
{
    fputs("usage: bic-agent [-c agent.ini] run\n"
          "       bic-agent --fleet N [--desktops D] [--threads K] [-c agent.ini] run\n"
          "       bic-agent [-c agent.ini] [-r ROOT] [-u LIBVIRT_URI] facts\n"
          "       bic-agent version\n",
          stderr);
}

static int cmd_facts(const char *root, const char *uri)
{
    ag_hv_quiet();
    virConnectPtr c = virConnectOpenReadOnly(uri);
    json_t *f = ag_facts_enroll(root, uri, c);
    if (!c) {
        json_t *hv = json_object_get(f, "hypervisor");
        const char *m = virGetLastErrorMessage();
        json_object_set_new(hv, "error", json_string(m ? m : "cannot connect"));
    }
    if (c) virConnectClose(c);
    if (!f) return 1;
    json_dumpf(f, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(f);
    return 0;
}

struct sig_ctx {
    sigset_t set;
    void (*stop)(void *arg);
    void *arg;
};

/* Waits for signals (blocked in every thread) and turns them into a stop. */
static void *signal_thread(void *arg)
{
    struct sig_ctx *s = arg;
    for (;;) {
        int sig;
        if (sigwait(&s->set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            AG_INFO("SIGHUP: nothing to reload");
            continue;
        }
        if (sig == SIGUSR1) return NULL; /* the daemon ended by itself */
        AG_INFO("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        s->stop(s->arg);
        return NULL;
    }
}

static void stop_daemon(void *arg)
{
    ag_daemon_stop(arg);
}

static void stop_fleet(void *arg)
{
    ag_fleet_stop(arg);
}

/* Blocks the signals that stop the daemon in every thread started after this. */
static int process_setup(struct sig_ctx *s)
{
    sigemptyset(&s->set);
    sigaddset(&s->set, SIGTERM);
    sigaddset(&s->set, SIGINT);
    sigaddset(&s->set, SIGHUP);
    sigaddset(&s->set, SIGUSR1);
    /* before any thread starts, so that they all inherit the mask */
    pthread_sigmask(SIG_BLOCK, &s->set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        AG_ERROR("curl_global_init failed");
        return -1;
    }
    return 0;
}

/* Runs run(arg) with a signal thread that calls s->stop(s->arg) on SIGTERM/SIGINT. */
static int run_with_signals(struct sig_ctx *s, int (*run)(void *), void *arg)
{
    pthread_t st;
    if (pthread_create(&st, NULL, signal_thread, s)) {
        AG_ERROR("cannot start the signal thread");
        return 1;
    }
    int rc = run(arg);
    pthread_kill(st, SIGUSR1);
    pthread_join(st, NULL);
    return rc;
}

static int run_daemon(void *arg)
{
    return ag_daemon_run(arg);
}

static int run_fleet(void *arg)
{
    return ag_fleet_run(arg);
}

static int cmd_run(ag_config *cfg)
{
    char err[512];
    if (ag_config_resolve(cfg, err, sizeof(err)) < 0) {
        AG_ERROR("configuration: %s", err);
        return 2;
    }
    struct sig_ctx s = {.stop = stop_daemon};
    if (process_setup(&s) < 0) return 1;
    int rc = 1;
    ag_daemon *d = ag_daemon_new(cfg, err, sizeof(err));
    if (!d) {
        AG_ERROR("%s", err);
        goto out;
    }
    s.arg = d;
    rc = run_with_signals(&s, run_daemon, d);
    ag_daemon_free(d);
    AG_INFO("bic-agent stopped");
out:
    curl_global_cleanup();
    return rc;
}

static int cmd_fleet(ag_config *cfg, const ag_fleet_opts *o)
{
    char err[512];
    if (ag_fleet_resolve(cfg, err, sizeof(err)) < 0) {
        AG_ERROR("configuration: %s", err);
        return 2;
    }
    struct sig_ctx s = {.stop = stop_fleet};
    if (process_setup(&s) < 0) return 1;
    int rc = 1;
    ag_fleet *f = ag_fleet_new(cfg, o, err, sizeof(err));
    if (!f) {
        AG_ERROR("%s", err);
        goto out;
    }
    s.arg = f;
    rc = run_with_signals(&s, run_fleet, f);
    ag_fleet_free(f);
    AG_INFO("bic-agent fleet stopped");
out:
    curl_global_cleanup();
    return rc;
}

/* A count option: decimal digits only, at most max. 0 or -1. */
static int parse_count(const char *s, size_t max, size_t *out)
{
    if (!*s || strlen(s) > 9) return -1;
    size_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (size_t)(*s - '0');
    }
    if (v > max) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *root = NULL, *uri = NULL;
    const char *fleet = NULL, *desktops = NULL, *threads = NULL;
    int i = 1;
    for (; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-c"))
            conf = argv[i + 1];
        else if (!strcmp(argv[i], "-r"))
            root = argv[i + 1];
        else if (!strcmp(argv[i], "-u"))
            uri = argv[i + 1];
        else if (!strcmp(argv[i], "--fleet"))
            fleet = argv[i + 1];
        else if (!strcmp(argv[i], "--desktops"))
            desktops = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            threads = argv[i + 1];
        else
            break;
    }
    const char *cmd = i < argc ? argv[i] : "";
    if (i + 1 < argc) {
        usage();
        return 2;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("bic-agent %s (%s)\n", BIC_VERSION, BIC_GIT_REV);
        return 0;
    }
    const char *lv = getenv("BIC_AGENT_LOG");
    if (lv && ag_log_level_parse(lv) >= 0) ag_log_set_level(ag_log_level_parse(lv));
    if (strcmp(cmd, "facts") && strcmp(cmd, "run")) {
        usage();
        return 2;
    }
    ag_fleet_opts fo = {0, AG_FLEET_DESKTOPS, 0};
    if ((desktops || threads) && !fleet) {
        fputs("bic-agent: --desktops and --threads go with --fleet\n", stderr);
        return 2;
    }
    if (fleet &&
        (strcmp(cmd, "run") || parse_count(fleet, AG_FLEET_MAX, &fo.members) < 0 || !fo.members ||
         (desktops && parse_count(desktops, AG_FLEET_DESKTOPS_MAX, &fo.desktops) < 0) ||
         (threads &&
          (parse_count(threads, AG_FLEET_THREADS_MAX, &fo.threads) < 0 || !fo.threads)))) {
        fprintf(stderr,
                "bic-agent: --fleet 1..%d [--desktops 0..%d] [--threads 1..%d] go with run\n",
                AG_FLEET_MAX, AG_FLEET_DESKTOPS_MAX, AG_FLEET_THREADS_MAX);
        return 2;
    }
    ag_config cfg;
    char err[512];
    if (ag_config_load(&cfg, conf, err, sizeof(err)) < 0) {
        fprintf(stderr, "bic-agent: %s\n", err);
        ag_config_free(&cfg);
        return 2;
    }
    int rc;
    if (!strcmp(cmd, "facts")) {
        /* -r/-u, then the older BIC_AGENT_ROOT/BIC_AGENT_URI, then the configuration */
        if (!root) root = getenv("BIC_AGENT_ROOT");
        if (!uri) uri = getenv("BIC_AGENT_URI");
        rc = cmd_facts(root ? root : cfg.root_prefix, uri ? uri : cfg.libvirt_uri);
    } else {
        if (root || uri) {
            fputs("bic-agent: -r and -u are for facts; set root_prefix and libvirt_uri\n", stderr);
            rc = 2;
        } else {
            rc = fleet ? cmd_fleet(&cfg, &fo) : cmd_run(&cfg);
        }
    }
    ag_config_free(&cfg);
    return rc;
}
