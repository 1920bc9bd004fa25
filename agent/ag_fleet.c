#include "ag_fleet.h"

#include <errno.h>
#include <limits.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ag_agent.h"
#include "ag_http.h"
#include "ag_listener.h"
#include "ag_log.h"
#include "ag_sched.h"
#include "ag_state.h"
#include "ag_util.h"
#include "version.h"

#define PROGRESS_EVERY_MS 10000

/* a member's task jobs, as the runners see them (under the fleet's lock) */
enum member_tasks {
    TASKS_IDLE,    /* nothing queued */
    TASKS_QUEUED,  /* on the ready list */
    TASKS_RUNNING, /* a runner is in ag_agent_work_task */
    TASKS_AGAIN,   /* running, and more was queued meanwhile */
};

struct member {
    ag_fleet *f;
    size_t index;
    ag_config cfg;
    ag_agent *agent;
    /* under f->lock */
    int stepping, woken;
    enum member_tasks tasks;
    struct member *ready_next;
};

struct worker {
    ag_fleet *f;
    pthread_t thread;
    int started;
    ag_http *http;
};

struct ag_fleet {
    const ag_config *base;
    ag_fleet_opts o;
    char advertise[AG_URL_MAX + 1];

    pthread_mutex_t lock;
    pthread_cond_t step_cond; /* CLOCK_MONOTONIC; steppers wait for the next due member */
    pthread_cond_t task_cond; /* runners wait for a ready member */
    pthread_cond_t stop_cond; /* CLOCK_MONOTONIC; ag_fleet_run waits for the stop */
    int stop;
    atomic_int stopping; /* stop, readable without the lock: aborts requests in flight */

    struct member *m;
    size_t n;
    ag_sched *sched;                        /* members not being stepped */
    struct member *ready_head, *ready_tail; /* members with task jobs */

    struct worker *steppers, *runners;
    size_t nsteppers;
    ag_listener *listener;
};

/* ---- identities and hypervisor files ---- */

/* Reads the first line of <root>/etc/machine-id into buf; 0, or -1 when there is none. */
static int read_machine_id(const char *root, char *buf, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/etc/machine-id", root);
    AG_AUTOFREE char *id = ag_file_read(path, 4096, NULL);
    if (!id) return -1;
    id[strcspn(id, "\r\n")] = '\0';
    if (!*id) return -1;
    return ag_strlcpy(buf, id, len);
}

int ag_fleet_resolve(ag_config *cfg, char *err, size_t errlen)
{
    if (!*cfg->hostname) {
        char host[HOST_NAME_MAX + 1] = "";
        if (gethostname(host, sizeof(host)) < 0) {
            snprintf(err, errlen, "gethostname: %s (set hostname)", strerror(errno));
            return -1;
        }
        host[HOST_NAME_MAX] = '\0';
        if (ag_config_set(cfg, "hostname", host) < 0) goto oom;
    }
    if (!*cfg->machine_id) {
        char id[256];
        const char *use =
            read_machine_id(cfg->root_prefix, id, sizeof(id)) == 0 ? id : cfg->hostname;
        if (ag_config_set(cfg, "machine_id", use) < 0) goto oom;
    }
    if (!*cfg->state_dir) {
        snprintf(err, errlen, "state_dir must be set");
        return -1;
    }
    if (ag_mkdir_p(cfg->state_dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create state_dir %s: %s", cfg->state_dir, strerror(errno));
        return -1;
    }
    char abs[PATH_MAX];
    if (!realpath(cfg->state_dir, abs)) {
        snprintf(err, errlen, "state_dir %s: %s", cfg->state_dir, strerror(errno));
        return -1;
    }
    if (ag_config_set(cfg, "state_dir", abs) < 0) goto oom;
    if (ag_listen_parse(cfg->listen, cfg->listen_host, sizeof(cfg->listen_host),
                        &cfg->listen_port) < 0) {
        snprintf(err, errlen, "listen '%s' is not host:port", cfg->listen);
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

int ag_fleet_member_config(const ag_config *base, size_t i, const char *advertise_base,
                           ag_config *out, char *err, size_t errlen)
{
    if (ag_config_copy(out, base) < 0) goto oom;
    char v[AG_URL_MAX + 1];
    snprintf(v, sizeof(v), "%s-fleet-%zu", base->machine_id, i);
    if (ag_config_set(out, "machine_id", v) < 0) goto oom;
    snprintf(v, sizeof(v), "%s-%zu", base->hostname, i);
    if (ag_config_set(out, "hostname", v) < 0) goto oom;
    snprintf(v, sizeof(v), "%s/%zu", base->state_dir, i);
    if (ag_config_set(out, "state_dir", v) < 0) goto oom;
    /* state_dir is absolute: test:// + /abs/path is test:///abs/path */
    snprintf(v, sizeof(v), "test://%s/%zu/" AG_FLEET_HV_FILE, base->state_dir, i);
    if (ag_config_set(out, "libvirt_uri", v) < 0) goto oom;
    snprintf(v, sizeof(v), "%s" AG_LISTENER_ROUTE_PREFIX "%zu", advertise_base, i);
    if (ag_config_set(out, "advertise_url", v) < 0) goto oom;
    /*
     * Members share root_prefix, so they report the same NICs and VFs. Their domains live in
     * test:// files: "auto" must not program the host's real VFs for them, even on root "".
     */
    if (strcmp(out->sriov_netlink, "on") && ag_config_set(out, "sriov_netlink", "off") < 0)
        goto oom;
    char why[400];
    if (ag_config_resolve(out, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "fleet member %zu: %s", i, why);
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

void ag_fleet_domain_uuid(const char *machine_id, size_t k, char out[VIR_UUID_STRING_BUFLEN])
{
    char in[300];
    int len = snprintf(in, sizeof(in), "%s/%zu", machine_id, k);
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)in, len > 0 ? (size_t)len : 0, h);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x80); /* version 8: custom */
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80); /* RFC variant */
    snprintf(out, VIR_UUID_STRING_BUFLEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0], h[1],
             h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14],
             h[15]);
}

char *ag_fleet_hv_xml(const char *machine_id, const char *hostname, size_t desktops)
{
    char name[200];
    snprintf(name, sizeof(name), "%s", hostname);
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            *p = '_';
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputs("<!-- libvirt test driver of one bic-agent fleet member, rewritten at every start -->\n"
          "<node>\n",
          f);
    for (size_t k = 0; k < desktops; k++) {
        char uuid[VIR_UUID_STRING_BUFLEN];
        ag_fleet_domain_uuid(machine_id, k, uuid);
        fprintf(f,
                "  <domain type='test'>\n"
                "    <name>%s-d%03zu</name>\n"
                "    <uuid>%s</uuid>\n"
                "    <memory unit='MiB'>%d</memory>\n"
                "    <vcpu>%d</vcpu>\n"
                "    <os><type>hvm</type></os>\n"
                "  </domain>\n",
                name, k, uuid, AG_FLEET_DOMAIN_MIB, AG_FLEET_DOMAIN_VCPUS);
    }
    fputs("</node>\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/*
 * Writes a member's hypervisor file unless it already holds exactly this (no
 * fsync: it is made again at every start). 0 or -1 with err.
 */
static int write_hv(const ag_config *cfg, size_t desktops, char *err, size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/" AG_FLEET_HV_FILE, cfg->state_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    AG_AUTOFREE char *xml = ag_fleet_hv_xml(cfg->machine_id, cfg->hostname, desktops);
    if (!xml) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t len = strlen(xml), have_len = 0;
    AG_AUTOFREE char *have = ag_file_read(path, len + 1, &have_len);
    if (have && have_len == len && !memcmp(have, xml, len)) return 0;
    FILE *f = fopen(tmp, "w");
    if (!f) goto fail;
    int ok = fwrite(xml, 1, len, f) == len;
    if (fclose(f) != 0 || !ok || rename(tmp, path) < 0) {
        unlink(tmp);
        goto fail;
    }
    return 0;
fail:
    snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(errno));
    return -1;
}

/* ---- scheduling: steppers ---- */

/* An agent of the fleet has work due: step it as soon as a stepper is free. */
static void member_wake(void *arg)
{
    struct member *m = arg;
    ag_fleet *f = m->f;
    pthread_mutex_lock(&f->lock);
    if (m->stepping)
        m->woken = 1;
    else if (ag_sched_earlier(f->sched, m->index, ag_mono_ms()))
        pthread_cond_signal(&f->step_cond);
    pthread_mutex_unlock(&f->lock);
}

static void *stepper_main(void *arg)
{
    struct worker *w = arg;
    ag_fleet *f = w->f;
    pthread_mutex_lock(&f->lock);
    while (!f->stop) {
        long long due, now = ag_mono_ms();
        long i = ag_sched_peek(f->sched, &due);
        if (i < 0) {
            pthread_cond_wait(&f->step_cond, &f->lock);
            continue;
        }
        if (due > now) {
            struct timespec until = {due / 1000, (due % 1000) * 1000000L};
            pthread_cond_timedwait(&f->step_cond, &f->lock, &until);
            continue;
        }
        ag_sched_pop(f->sched);
        struct member *m = &f->m[i];
        m->stepping = 1;
        m->woken = 0;
        pthread_mutex_unlock(&f->lock);
        long long next = ag_agent_step(m->agent, w->http, now);
        pthread_mutex_lock(&f->lock);
        m->stepping = 0;
        if (m->woken) next = ag_mono_ms();
        ag_sched_put(f->sched, m->index, next);
        /* it may now be the earliest: one sleeper should time its wait again */
        if (ag_sched_peek(f->sched, NULL) == i) pthread_cond_signal(&f->step_cond);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

/* ---- scheduling: task runners ---- */

static void ready_push(ag_fleet *f, struct member *m)
{
    m->tasks = TASKS_QUEUED;
    m->ready_next = NULL;
    if (f->ready_tail)
        f->ready_tail->ready_next = m;
    else
        f->ready_head = m;
    f->ready_tail = m;
    pthread_cond_signal(&f->task_cond);
}

static void member_tasks_ready(void *arg)
{
    struct member *m = arg;
    ag_fleet *f = m->f;
    pthread_mutex_lock(&f->lock);
    if (m->tasks == TASKS_IDLE)
        ready_push(f, m);
    else if (m->tasks == TASKS_RUNNING)
        m->tasks = TASKS_AGAIN;
    pthread_mutex_unlock(&f->lock);
}

/* Runs one job of one member at a time; jobs of one member run in order, members take turns. */
static void *runner_main(void *arg)
{
    struct worker *w = arg;
    ag_fleet *f = w->f;
    pthread_mutex_lock(&f->lock);
    while (!f->stop) {
        struct member *m = f->ready_head;
        if (!m) {
            pthread_cond_wait(&f->task_cond, &f->lock);
            continue;
        }
        f->ready_head = m->ready_next;
        if (!f->ready_head) f->ready_tail = NULL;
        m->tasks = TASKS_RUNNING;
        pthread_mutex_unlock(&f->lock);
        int ran = ag_agent_work_task(m->agent, w->http);
        pthread_mutex_lock(&f->lock);
        if (ran || m->tasks == TASKS_AGAIN)
            ready_push(f, m);
        else
            m->tasks = TASKS_IDLE;
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

/* ---- the fleet ---- */

/* desktop.migrate between members: the member listening at listen_url (ag_exec_env). */
static virConnectPtr fleet_peer(void *arg, const char *listen_url)
{
    struct member *m = arg;
    for (size_t i = 0; i < m->f->n; i++)
        if (m->f->m[i].agent && !strcmp(ag_agent_listen_url(m->f->m[i].agent), listen_url))
            return ag_agent_conn(m->f->m[i].agent);
    return NULL;
}

static int on_task(void *arg, size_t route, ag_listener_kind kind, const char *body, size_t len,
                   const char *sig, char **answer)
{
    ag_fleet *f = arg;
    /* the listener routes only 0 .. n-1, and serves once every member exists */
    if (kind == AG_LISTENER_CALL)
        return ag_agent_on_call(f->m[route].agent, body, len, sig, answer);
    return ag_agent_on_task(f->m[route].agent, body, len, sig, answer);
}

/* Lets the process hold a lock file per member plus sockets. 0 or -1 with err. */
static int raise_fd_limit(size_t members, char *err, size_t errlen)
{
    rlim_t need = (rlim_t)members + 256;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return 0;
    if (rl.rlim_cur >= need) return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        snprintf(err, errlen,
                 "a fleet of %zu needs about %llu file descriptors; the hard limit is %llu "
                 "(ulimit -Hn)",
                 members, (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        snprintf(err, errlen, "cannot raise the file descriptor limit to %llu: %s",
                 (unsigned long long)need, strerror(errno));
        return -1;
    }
    return 0;
}

static int workers_new(ag_fleet *f, struct worker **ws, size_t n)
{
    *ws = calloc(n, sizeof(**ws));
    if (!*ws) return -1;
    for (size_t i = 0; i < n; i++) {
        (*ws)[i].f = f;
        (*ws)[i].http = ag_http_new(f->base->ccc_url, f->base->ca_file, &f->stopping);
        if (!(*ws)[i].http) return -1;
    }
    return 0;
}

ag_fleet *ag_fleet_new(const ag_config *base, const ag_fleet_opts *opts, char *err, size_t errlen)
{
    if (opts->members < 1 || opts->members > AG_FLEET_MAX) {
        snprintf(err, errlen, "--fleet must be 1..%d", AG_FLEET_MAX);
        return NULL;
    }
    if (opts->desktops > AG_FLEET_DESKTOPS_MAX) {
        snprintf(err, errlen, "--desktops must be 0..%d", AG_FLEET_DESKTOPS_MAX);
        return NULL;
    }
    if (opts->threads > AG_FLEET_THREADS_MAX) {
        snprintf(err, errlen, "--threads must be 1..%d", AG_FLEET_THREADS_MAX);
        return NULL;
    }
    if (raise_fd_limit(opts->members, err, errlen) < 0) return NULL;
    ag_fleet *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->base = base;
    f->o = *opts;
    if (!f->o.threads) f->o.threads = AG_FLEET_THREADS;
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->step_cond, &ca);
    pthread_cond_init(&f->stop_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&f->task_cond, NULL);

    f->m = calloc(opts->members, sizeof(*f->m));
    f->sched = ag_sched_new(opts->members);
    if (!f->m || !f->sched || workers_new(f, &f->steppers, f->o.threads) < 0 ||
        workers_new(f, &f->runners, AG_FLEET_TASK_THREADS) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    f->nsteppers = f->o.threads;
    f->listener = ag_listener_bind(base->listen_host, base->listen_port, err, errlen);
    if (!f->listener) goto fail;
    ag_config_listen_url(base, ag_listener_port(f->listener), f->advertise, sizeof(f->advertise));
    size_t l = strlen(f->advertise);
    while (l > 0 && f->advertise[l - 1] == '/')
        f->advertise[--l] = '\0';
    for (size_t i = 0; i < opts->members; i++) {
        struct member *m = &f->m[i];
        m->f = f;
        m->index = i;
        f->n = i + 1; /* ag_fleet_free releases cfg from here on */
        if (ag_fleet_member_config(base, i, f->advertise, &m->cfg, err, errlen) < 0) goto fail;
        char why[400];
        if (ag_mkdir_p(m->cfg.state_dir, 0700) < 0) {
            snprintf(err, errlen, "cannot create %s: %s", m->cfg.state_dir, strerror(errno));
            goto fail;
        }
        if (write_hv(&m->cfg, opts->desktops, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "fleet member %zu: %s", i, why);
            goto fail;
        }
        char tag[96];
        snprintf(tag, sizeof(tag), "[%.80s] ", m->cfg.hostname);
        ag_agent_opts ao = {.listen_url = m->cfg.advertise_url,
                            .log_tag = tag,
                            .slot = i,
                            .slots = opts->members,
                            .wake = member_wake,
                            .tasks_ready = member_tasks_ready,
                            .peer_conn = fleet_peer,
                            .arg = m};
        if (!(m->agent = ag_agent_new(&m->cfg, &ao, why, sizeof(why)))) {
            snprintf(err, errlen, "fleet member %zu: %s", i, why);
            goto fail;
        }
        ag_sched_put(f->sched, i, 0); /* due at once, in order */
    }
    if (ag_listener_serve(f->listener, f->n, on_task, f, err, errlen) < 0) goto fail;
    return f;
fail:
    ag_fleet_free(f);
    return NULL;
}

void ag_fleet_stop(ag_fleet *f)
{
    pthread_mutex_lock(&f->lock);
    f->stop = 1;
    atomic_store(&f->stopping, 1);
    pthread_cond_broadcast(&f->step_cond);
    pthread_cond_broadcast(&f->task_cond);
    pthread_cond_broadcast(&f->stop_cond);
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < f->n; i++)
        if (f->m[i].agent) ag_agent_stop(f->m[i].agent);
}

int ag_fleet_listen_port(const ag_fleet *f)
{
    return ag_listener_port(f->listener);
}

size_t ag_fleet_enrolled(ag_fleet *f)
{
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->m[i].agent && ag_agent_server_id(f->m[i].agent)) k++;
    return k;
}

static int start_workers(struct worker *ws, size_t n, void *(*fn)(void *))
{
    for (size_t i = 0; i < n; i++) {
        int rc = pthread_create(&ws[i].thread, NULL, fn, &ws[i]);
        if (rc) {
            AG_ERROR("fleet: cannot start a thread: %s", strerror(rc));
            return -1;
        }
        ws[i].started = 1;
    }
    return 0;
}

static void join_workers(struct worker *ws, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ws[i].started) {
            pthread_join(ws[i].thread, NULL);
            ws[i].started = 0;
        }
}

int ag_fleet_run(ag_fleet *f)
{
    const ag_config *b = f->base;
    if (strncmp(b->ccc_url, "https://", 8))
        AG_WARN("ccc_url is not https: the credential travels in clear (tests only)");
    AG_INFO("bic-agent %s (%s) fleet: %zu servers x %zu desktops, ccc %s, tasks on "
            "%s" AG_LISTENER_ROUTE_PREFIX "<i>, state in %s/<i>, machines %s-fleet-<i>, "
            "%zu + %d threads",
            BIC_VERSION, BIC_GIT_REV, f->n, f->o.desktops, b->ccc_url, f->advertise, b->state_dir,
            b->machine_id, f->nsteppers, AG_FLEET_TASK_THREADS);
    int rc = 0;
    if (start_workers(f->steppers, f->nsteppers, stepper_main) < 0 ||
        start_workers(f->runners, AG_FLEET_TASK_THREADS, runner_main) < 0) {
        rc = 1;
        ag_fleet_stop(f);
    }
    /* progress until every member has enrolled, then quiet */
    long long t0 = ag_mono_ms();
    size_t last = (size_t)-1;
    pthread_mutex_lock(&f->lock);
    while (!f->stop) {
        pthread_mutex_unlock(&f->lock);
        size_t k = last == f->n ? f->n : ag_fleet_enrolled(f);
        if (k != last && (k == f->n || last == (size_t)-1 || k / 100 != last / 100))
            AG_INFO("fleet: %zu of %zu servers enrolled (%.1f s)", k, f->n,
                    (ag_mono_ms() - t0) / 1000.0);
        last = k;
        pthread_mutex_lock(&f->lock);
        if (f->stop) break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += k == f->n ? PROGRESS_EVERY_MS / 1000 : 1;
        pthread_cond_timedwait(&f->stop_cond, &f->lock, &until);
    }
    pthread_mutex_unlock(&f->lock);
    join_workers(f->steppers, f->nsteppers);
    join_workers(f->runners, AG_FLEET_TASK_THREADS);
    AG_INFO("bic-agent fleet stopping");
    return rc;
}

void ag_fleet_free(ag_fleet *f)
{
    if (!f) return;
    /* no new tasks; then each agent lets its task finish and closes its hypervisor */
    ag_listener_stop(f->listener);
    for (size_t i = 0; i < f->n; i++) {
        ag_agent_free(f->m[i].agent);
        ag_config_free(&f->m[i].cfg);
    }
    for (size_t i = 0; f->steppers && i < f->o.threads; i++)
        ag_http_free(f->steppers[i].http);
    for (size_t i = 0; f->runners && i < AG_FLEET_TASK_THREADS; i++)
        ag_http_free(f->runners[i].http);
    free(f->steppers);
    free(f->runners);
    ag_sched_free(f->sched);
    free(f->m);
    pthread_cond_destroy(&f->step_cond);
    pthread_cond_destroy(&f->task_cond);
    pthread_cond_destroy(&f->stop_cond);
    pthread_mutex_destroy(&f->lock);
    free(f);
}
