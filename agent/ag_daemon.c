#include "ag_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "ag_domains.h"
#include "ag_events.h"
#include "ag_exec.h"
#include "ag_facts.h"
#include "ag_hoststats.h"
#include "ag_http.h"
#include "ag_hv.h"
#include "ag_listener.h"
#include "ag_log.h"
#include "ag_nonce.h"
#include "ag_state.h"
#include "ag_tasks.h"
#include "ag_util.h"
#include "ag_verify.h"
#include "version.h"

#define DEFAULT_INTERVAL_S 10
#define REFRESH_WAIT_S     30
#define MAX_SLEEP_MS       60000

struct ag_daemon {
    const ag_config *cfg;
    int lock_fd;
    char listen_url[AG_URL_MAX + 1];

    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    int stop, wake;
    atomic_int stopping; /* stop, readable without the lock: aborts requests in flight */

    /* identity, read by the listener and the worker: under lock */
    ag_state st;
    int have_state; /* st holds a server id and CCC's key */
    int enrolled;   /* the credential is believed to work */

    /* lifecycle events from libvirt's thread: under lock */
    ag_event events[AG_EVENTS_MAX];
    size_t ev_head, ev_count;
    unsigned long long ev_dropped;

    /* inventory.refresh: the worker asks, the main loop answers; under lock */
    unsigned long long refresh_req, refresh_done;
    long long refresh_seq; /* -1: the last refresh failed with refresh_err */
    char refresh_err[256];

    /* main loop only */
    ag_event sending[AG_EVENTS_MAX];
    ag_http *http;
    long long seq;
    int need_full;
    ag_snapshot acked;
    ag_host_sample sample;
    int have_sample;
    long long interval_s;
    long long hb_next_ms, enroll_next_ms, prune_next_ms;
    unsigned ccc_backoff_s, enroll_backoff_s;

    ag_http *worker_http; /* the task worker only */
    ag_listener *listener;
    ag_hv *hv;
    ag_tasks *tasks;
    ag_nonces *nonces;
};

static void wake(ag_daemon *d)
{
    pthread_mutex_lock(&d->lock);
    d->wake = 1;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

/* ---- talking to CCC ---- */

/* The "error" of a CCC answer as "code: message" for the log. */
static void answer_error(const json_t *answer, char *buf, size_t len)
{
    const json_t *e = json_object_get(answer, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!code) code = json_string_value(e);
    snprintf(buf, len, "%.64s%s%.200s", code ? code : "no error code", msg ? ": " : "",
             msg ? msg : "");
}

/* POSTs with "Authorization: Bearer <server_id>.<credential>". */
static int post_auth(ag_daemon *d, ag_http *h, const char *path, const json_t *body,
                     json_t **answer, char *err, size_t errlen)
{
    char bearer[AG_CREDENTIAL_MAX + 32];
    pthread_mutex_lock(&d->lock);
    snprintf(bearer, sizeof(bearer), "%lld.%s", d->st.server_id, d->st.credential);
    pthread_mutex_unlock(&d->lock);
    int status = ag_http_post(h, path, bearer, body, answer, err, errlen);
    explicit_bzero(bearer, sizeof(bearer));
    return status;
}

/* CCC answered: forget the back-off. */
static void ccc_up(ag_daemon *d)
{
    if (d->ccc_backoff_s) AG_INFO("CCC is reachable again");
    d->ccc_backoff_s = 0;
}

/* A heartbeat failed: back off, and send a full heartbeat when CCC is back. */
static void ccc_down(ag_daemon *d, long long now, int status, const char *err, const json_t *answer)
{
    char why[300];
    if (status < 0)
        snprintf(why, sizeof(why), "%.290s", err);
    else
        answer_error(answer, why, sizeof(why));
    unsigned prev = d->ccc_backoff_s;
    d->ccc_backoff_s = ag_backoff_next(prev, AG_CCC_BACKOFF_S);
    d->need_full = 1; /* deltas since the last acknowledged heartbeat are not kept */
    d->hb_next_ms = now + 1000LL * d->ccc_backoff_s;
    if (prev && d->ccc_backoff_s < AG_CCC_BACKOFF_S) return; /* said already */
    if (status < 0)
        AG_WARN("heartbeat failed: %s; next try in %u s", why, d->ccc_backoff_s);
    else
        AG_WARN("heartbeat failed (HTTP %d): %s; next try in %u s", status, why, d->ccc_backoff_s);
}

/* The credential was refused: enroll again with the token, at once. */
static void credential_refused(ag_daemon *d, long long now, const char *what)
{
    AG_WARN("%s: CCC refused the credential (401): enrolling again", what);
    pthread_mutex_lock(&d->lock);
    d->enrolled = 0;
    pthread_mutex_unlock(&d->lock);
    d->enroll_next_ms = now;
    d->enroll_backoff_s = 0;
    d->need_full = 1;
}

/* ---- enrollment ---- */

static void enroll(ag_daemon *d, long long now)
{
    const ag_config *cfg = d->cfg;
    if (!*cfg->token) {
        AG_ERROR("cannot enroll: no enrollment token is configured (token / BIC_AGENT_TOKEN)");
        d->enroll_backoff_s = AG_CCC_BACKOFF_S;
        d->enroll_next_ms = now + 1000LL * d->enroll_backoff_s;
        return;
    }
    virConnectPtr c = ag_hv_conn(d->hv);
    json_t *facts = ag_facts_enroll(cfg->root_prefix, cfg->libvirt_uri, c);
    if (c) virConnectClose(c);
    AG_AUTOJSON json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o*}", "token", cfg->token, "machine_id",
                  cfg->machine_id, "hostname", cfg->hostname, "listen_url", d->listen_url,
                  "agent_version", BIC_VERSION, "facts", facts);
    if (!body) {
        AG_ERROR("cannot enroll: out of memory");
        d->enroll_next_ms = now + 1000;
        return;
    }
    char err[512];
    AG_AUTOJSON json_t *answer = NULL;
    int status =
        ag_http_post(d->http, "/api/v1/agent/enroll", NULL, body, &answer, err, sizeof(err));
    ag_json_wipe_string(json_object_get(body, "token"));
    if (status == 200) {
        ag_state st;
        pthread_mutex_lock(&d->lock);
        st = d->st;
        pthread_mutex_unlock(&d->lock);
        int ok = ag_state_from_enroll(answer, &st, err, sizeof(err)) == 0;
        ag_json_wipe_string(json_object_get(answer, "credential"));
        if (ok) {
            snprintf(st.machine_id, sizeof(st.machine_id), "%s", cfg->machine_id);
            snprintf(st.listen_url, sizeof(st.listen_url), "%s", d->listen_url);
            ok = ag_state_save(cfg->state_dir, &st, err, sizeof(err)) == 0;
        }
        if (ok) {
            pthread_mutex_lock(&d->lock);
            d->st = st;
            d->have_state = d->enrolled = 1;
            pthread_mutex_unlock(&d->lock);
            if (!cfg->heartbeat_interval && st.heartbeat_interval)
                d->interval_s = st.heartbeat_interval;
            AG_INFO("enrolled as server %lld (heartbeat every %lld s)", st.server_id,
                    d->interval_s);
            ag_state_wipe(&st);
            d->enroll_backoff_s = 0;
            d->need_full = 1;
            d->hb_next_ms = now;
            ccc_up(d);
            return;
        }
        ag_state_wipe(&st);
        AG_ERROR("enrollment answer unusable: %s", err);
    } else if (status < 0) {
        AG_WARN("cannot enroll: %s", err);
    } else {
        char why[300];
        answer_error(answer, why, sizeof(why));
        const char *hint = status == 401   ? "the token is unknown, expired or revoked"
                           : status == 409 ? "no module of the building block has room"
                                           : "CCC refused the request";
        AG_ERROR("enrollment refused (HTTP %d, %s): %s", status, why, hint);
    }
    d->enroll_backoff_s = ag_backoff_next(d->enroll_backoff_s, AG_CCC_BACKOFF_S);
    d->enroll_next_ms = now + 1000LL * d->enroll_backoff_s;
}

/* ---- heartbeats ---- */

static void complete_refresh(ag_daemon *d, unsigned long long upto, long long seq, const char *err)
{
    pthread_mutex_lock(&d->lock);
    if (upto > d->refresh_done) {
        d->refresh_done = upto;
        d->refresh_seq = seq;
        snprintf(d->refresh_err, sizeof(d->refresh_err), "%s", err ? err : "");
        pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->lock);
}

static void heartbeat(ag_daemon *d, long long now)
{
    ag_host_sample s;
    ag_host_sample_read(d->cfg->root_prefix, now, &s);
    ag_host_stats hs;
    ag_host_stats_compute(d->have_sample ? &d->sample : NULL, &s, &hs);
    d->sample = s;
    d->have_sample = 1;

    ag_snapshot cur = {0};
    int have_doms = 0;
    char err[512];
    virConnectPtr c = ag_hv_conn(d->hv);
    if (c) {
        if (ag_domains_collect(c, &cur, err, sizeof(err)) == 0)
            have_doms = 1;
        else if (ag_hv_error_is_fatal())
            ag_hv_mark_lost(d->hv, err);
        else
            AG_WARN("cannot list domains: %s", err);
        virConnectClose(c);
    }
    /* an inventory.refresh asked for until now is answered by this heartbeat */
    pthread_mutex_lock(&d->lock);
    unsigned long long refresh_upto = d->refresh_req;
    if (refresh_upto != d->refresh_done) d->need_full = 1;
    pthread_mutex_unlock(&d->lock);

    /* without the hypervisor, desktops are not reported at all (never "full" and empty) */
    int full = have_doms && d->need_full;
    json_t *desktops, *removed = NULL;
    if (!have_doms)
        desktops = json_array(), removed = json_array();
    else if (full)
        desktops = ag_snapshot_json(&cur), removed = json_array();
    else
        desktops = ag_snapshot_delta(&d->acked, &cur, &removed);
    long long seq = ++d->seq;
    AG_AUTOJSON json_t *body =
        json_pack("{s:I, s:b, s:o*, s:o*, s:o*}", "seq", (json_int_t)seq, "full", full, "host",
                  ag_host_stats_json(&hs), "desktops", desktops, "removed", removed);
    if (!body || !json_object_get(body, "host") || !json_object_get(body, "desktops") ||
        !json_object_get(body, "removed")) {
        AG_ERROR("heartbeat: out of memory");
        ag_snapshot_clear(&cur);
        d->hb_next_ms = now + 1000;
        return;
    }
    AG_AUTOJSON json_t *answer = NULL;
    int status = post_auth(d, d->http, "/api/v1/agent/heartbeat", body, &answer, err, sizeof(err));
    if (status >= 200 && status < 300) {
        ccc_up(d);
        if (have_doms) ag_snapshot_move(&d->acked, &cur);
        int resync = json_is_true(json_object_get(answer, "resync"));
        json_t *iv = json_object_get(answer, "interval");
        if (!d->cfg->heartbeat_interval && json_is_integer(iv) && json_integer_value(iv) >= 1 &&
            json_integer_value(iv) <= 3600 && json_integer_value(iv) != d->interval_s) {
            d->interval_s = json_integer_value(iv);
            AG_INFO("heartbeat interval is now %lld s", d->interval_s);
        }
        if (resync) AG_INFO("CCC asked for a full heartbeat (resync after seq %lld)", seq);
        d->need_full = resync || (d->need_full && !have_doms);
        d->hb_next_ms = resync ? now : now + 1000LL * d->interval_s;
        AG_DEBUG("heartbeat %lld sent (%s, %zu desktops)", seq, full ? "full" : "delta",
                 json_array_size(json_object_get(body, "desktops")));
        complete_refresh(d, refresh_upto, full ? seq : -1,
                         full ? NULL : "no full heartbeat: the domains cannot be listed");
    } else if (status == 401) {
        credential_refused(d, now, "heartbeat");
        complete_refresh(d, refresh_upto, -1, "CCC refused the credential");
    } else {
        ccc_down(d, now, status, err, answer);
        complete_refresh(d, refresh_upto, -1, "heartbeat not delivered");
    }
    ag_snapshot_clear(&cur);
}

/* ---- events ---- */

static void on_event(void *arg, ag_event *ev)
{
    ag_daemon *d = arg;
    pthread_mutex_lock(&d->lock);
    if (d->ev_count == AG_EVENTS_MAX) {
        ag_event_clear(&d->events[d->ev_head]);
        d->ev_head = (d->ev_head + 1) % AG_EVENTS_MAX;
        d->ev_count--;
        d->ev_dropped++;
    }
    d->events[(d->ev_head + d->ev_count) % AG_EVENTS_MAX] = *ev;
    d->ev_count++;
    d->wake = 1;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static void on_hv_wake(void *arg)
{
    wake(arg);
}

/* Takes every queued event out into evs (AG_EVENTS_MAX). Returns how many. */
static size_t take_events(ag_daemon *d, ag_event *evs, unsigned long long *dropped)
{
    pthread_mutex_lock(&d->lock);
    size_t n = d->ev_count;
    for (size_t i = 0; i < n; i++)
        evs[i] = d->events[(d->ev_head + i) % AG_EVENTS_MAX];
    d->ev_head = d->ev_count = 0;
    *dropped = d->ev_dropped;
    d->ev_dropped = 0;
    pthread_mutex_unlock(&d->lock);
    return n;
}

static void send_events(ag_daemon *d, long long now)
{
    ag_event *evs = d->sending;
    unsigned long long dropped;
    size_t n = take_events(d, evs, &dropped);
    if (dropped) {
        AG_WARN("%llu lifecycle events dropped (queue full); a full heartbeat follows", dropped);
        d->need_full = 1;
    }
    if (!n) return;
    if (d->ccc_backoff_s) {
        /* CCC is down: stale events would only undo the full heartbeat that follows */
        for (size_t i = 0; i < n; i++)
            ag_event_clear(&evs[i]);
        AG_DEBUG("%zu lifecycle events dropped while CCC is unreachable", n);
        d->need_full = 1;
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        ag_event_resolve_state(&evs[i]);
        json_array_append_new(arr, ag_event_json(&evs[i]));
        AG_INFO("domain %s (%s): %s/%s -> %s", evs[i].name, evs[i].uuid,
                ag_event_name(evs[i].event), ag_event_detail(evs[i].event, evs[i].detail),
                evs[i].state);
    }
    AG_AUTOJSON json_t *body = json_pack("{s:o*}", "events", arr);
    if (!body) return;
    char err[512];
    AG_AUTOJSON json_t *answer = NULL;
    int status = post_auth(d, d->http, "/api/v1/agent/events", body, &answer, err, sizeof(err));
    if (status >= 200 && status < 300) return;
    if (status == 401) {
        credential_refused(d, now, "events");
        return;
    }
    char why[300];
    if (status < 0)
        snprintf(why, sizeof(why), "%.290s", err);
    else
        answer_error(answer, why, sizeof(why));
    AG_WARN("%zu lifecycle events not delivered (%d: %s); a full heartbeat follows", n, status,
            why);
    d->need_full = 1;
}

/* ---- tasks ---- */

static int task_execute(void *arg, const char *type, const json_t *params, json_t **result,
                        char *err, size_t errlen);
static int task_report(void *arg, long long id, const json_t *body);

static int on_task(void *arg, const char *body, size_t len, const char *sig, char **answer)
{
    ag_daemon *d = arg;
    unsigned char key[AG_SIG_KEY_LEN];
    pthread_mutex_lock(&d->lock);
    int have = d->have_state;
    long long server_id = d->st.server_id;
    memcpy(key, d->st.key, sizeof(key));
    pthread_mutex_unlock(&d->lock);

    ag_task_req req;
    char why[300] = "the agent has not enrolled yet";
    ag_verdict v = AG_V_NOT_ENROLLED;
    if (have)
        v = ag_verify_task(key, server_id, d->nonces, (long long)time(NULL), body, len, sig, &req,
                           why, sizeof(why));
    if (v == AG_V_OK) {
        switch (ag_tasks_submit(d->tasks, &req)) {
        case AG_SUBMIT_QUEUED:
            AG_INFO("task %lld (%s) accepted", req.task_id, req.type);
            break;
        case AG_SUBMIT_KNOWN:
            AG_INFO("task %lld (%s) delivered again: not run again, its state is reported",
                    req.task_id, req.type);
            break;
        case AG_SUBMIT_BUSY:
            snprintf(why, sizeof(why), "task %lld: the task queue is full", req.task_id);
            v = AG_V_BUSY;
            break;
        case AG_SUBMIT_ERROR:
            snprintf(why, sizeof(why), "task %lld: cannot record it", req.task_id);
            v = AG_V_STORAGE;
            break;
        }
        ag_task_req_clear(&req);
    }
    if (v != AG_V_OK)
        AG_WARN("task request refused (%d %s): %s", ag_verdict_status(v), ag_verdict_name(v), why);
    if (v == AG_V_OK)
        *answer = strdup("{\"accepted\":true}");
    else if (asprintf(answer, "{\"error\":\"%s\"}", ag_verdict_name(v)) < 0)
        *answer = NULL;
    return ag_verdict_status(v);
}

static int task_refresh(void *arg, long long *seq, char *err, size_t errlen)
{
    ag_daemon *d = arg;
    pthread_mutex_lock(&d->lock);
    unsigned long long mine = ++d->refresh_req;
    d->wake = 1;
    pthread_cond_broadcast(&d->cond);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += REFRESH_WAIT_S;
    while (d->refresh_done < mine && !d->stop)
        if (pthread_cond_timedwait(&d->cond, &d->lock, &until) == ETIMEDOUT) break;
    int rc = -1;
    if (d->refresh_done < mine)
        snprintf(err, errlen, "no full heartbeat within %d s", REFRESH_WAIT_S);
    else if (d->refresh_seq < 0)
        snprintf(err, errlen, "%s", d->refresh_err);
    else
        *seq = d->refresh_seq, rc = 0;
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static int task_execute(void *arg, const char *type, const json_t *params, json_t **result,
                        char *err, size_t errlen)
{
    ag_daemon *d = arg;
    ag_exec_env env = {ag_hv_conn(d->hv), task_refresh, d};
    int rc = ag_exec_task(&env, type, params, result, err, errlen);
    if (rc < 0 && env.conn && ag_hv_error_is_fatal()) ag_hv_mark_lost(d->hv, err);
    if (env.conn) virConnectClose(env.conn);
    return rc;
}

static int task_report(void *arg, long long id, const json_t *body)
{
    ag_daemon *d = arg;
    char path[96], err[512];
    snprintf(path, sizeof(path), "/api/v1/agent/tasks/%lld/status", id);
    int status = post_auth(d, d->worker_http, path, body, NULL, err, sizeof(err));
    if (status < 0) AG_DEBUG("task %lld status: %s", id, err);
    return status;
}

/* ---- set-up and the main loop ---- */

static int lock_state_dir(ag_daemon *d, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/agent.lock", d->cfg->state_dir);
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (d->lock_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "state_dir %s is in use by another bic-agent", d->cfg->state_dir);
        return -1;
    }
    return 0;
}

/* Builds the URL CCC calls for tasks from advertise_url or the bound listener. */
static void make_listen_url(ag_daemon *d)
{
    const ag_config *cfg = d->cfg;
    if (*cfg->advertise_url) {
        snprintf(d->listen_url, sizeof(d->listen_url), "%s", cfg->advertise_url);
        return;
    }
    const char *host = cfg->listen_host;
    /* a wildcard address is no address CCC can call: use the host name */
    if (!*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")) host = cfg->hostname;
    int v6 = strchr(host, ':') != NULL;
    snprintf(d->listen_url, sizeof(d->listen_url), "http://%s%s%s:%d", v6 ? "[" : "", host,
             v6 ? "]" : "", ag_listener_port(d->listener));
}

/* Loads state.json and decides whether to enroll. Returns 0 or -1 with err. */
static int load_state(ag_daemon *d, char *err, size_t errlen)
{
    const ag_config *cfg = d->cfg;
    char why[400];
    int rc = ag_state_load(cfg->state_dir, &d->st, why, sizeof(why));
    if (rc < 0) AG_ERROR("ignoring the state file: %s", why);
    if (rc == 0 && strcmp(d->st.machine_id, cfg->machine_id)) {
        AG_WARN("machine_id changed since enrollment: enrolling again");
        ag_state_wipe(&d->st);
        rc = 1;
    }
    if (rc == 0) {
        d->have_state = d->enrolled = 1;
        if (strcmp(d->st.listen_url, d->listen_url)) {
            if (*cfg->token) {
                AG_INFO("listener moved from %s to %s: enrolling again to tell CCC",
                        d->st.listen_url, d->listen_url);
                d->enrolled = 0;
            } else {
                AG_WARN("listener moved from %s to %s but there is no token to tell CCC",
                        d->st.listen_url, d->listen_url);
            }
        }
        if (d->enrolled) AG_INFO("enrolled as server %lld", d->st.server_id);
        return 0;
    }
    if (!*cfg->token) {
        snprintf(err, errlen, "not enrolled and no enrollment token configured (token)");
        return -1;
    }
    return 0;
}

ag_daemon *ag_daemon_new(const ag_config *cfg, char *err, size_t errlen)
{
    ag_daemon *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->lock_fd = -1;
    d->interval_s = cfg->heartbeat_interval ? cfg->heartbeat_interval : DEFAULT_INTERVAL_S;
    d->need_full = 1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);

    if (ag_mkdir_p(cfg->state_dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create state_dir %s: %s", cfg->state_dir, strerror(errno));
        goto fail;
    }
    if (lock_state_dir(d, err, errlen) < 0) goto fail;
    d->http = ag_http_new(cfg->ccc_url, cfg->ca_file, &d->stopping);
    d->worker_http = ag_http_new(cfg->ccc_url, cfg->ca_file, &d->stopping);
    d->nonces = ag_nonces_new(AG_NONCE_WINDOW_S, AG_NONCE_MAX);
    if (!d->http || !d->worker_http || !d->nonces) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    ag_task_ops ops = {task_execute, task_report, d};
    if (!(d->tasks = ag_tasks_new(cfg->state_dir, &ops, err, errlen))) goto fail;
    d->listener = ag_listener_start(cfg->listen_host, cfg->listen_port, on_task, d, err, errlen);
    if (!d->listener) goto fail;
    make_listen_url(d);
    if (load_state(d, err, errlen) < 0) goto fail;
    ag_hv_ops hops = {on_event, on_hv_wake, d};
    if (!(d->hv = ag_hv_new(cfg->libvirt_uri, &hops))) {
        snprintf(err, errlen, "cannot start libvirt's event loop");
        goto fail;
    }
    if (ag_tasks_start(d->tasks, err, errlen) < 0) goto fail;
    return d;
fail:
    ag_daemon_free(d);
    return NULL;
}

void ag_daemon_stop(ag_daemon *d)
{
    pthread_mutex_lock(&d->lock);
    d->stop = 1;
    atomic_store(&d->stopping, 1);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

int ag_daemon_listen_port(const ag_daemon *d)
{
    return ag_listener_port(d->listener);
}

const char *ag_daemon_listen_url(const ag_daemon *d)
{
    return d->listen_url;
}

int ag_daemon_run(ag_daemon *d)
{
    const ag_config *cfg = d->cfg;
    if (strncmp(cfg->ccc_url, "https://", 8))
        AG_WARN("ccc_url is not https: the credential travels in clear (tests only)");
    AG_INFO("bic-agent %s (%s): ccc %s, libvirt %s, tasks on %s, state in %s, machine %s",
            BIC_VERSION, BIC_GIT_REV, cfg->ccc_url, cfg->libvirt_uri, d->listen_url, cfg->state_dir,
            cfg->machine_id);
    for (;;) {
        pthread_mutex_lock(&d->lock);
        int stop = d->stop;
        d->wake = 0;
        int enrolled = d->enrolled;
        int refresh = d->refresh_req != d->refresh_done;
        pthread_mutex_unlock(&d->lock);
        if (stop) break;

        long long now = ag_mono_ms(), next = now + MAX_SLEEP_MS;
        if (ag_hv_tick(d->hv, now, &next)) d->need_full = 1;
        if (!enrolled && now >= d->enroll_next_ms) enroll(d, now);
        pthread_mutex_lock(&d->lock);
        enrolled = d->enrolled;
        pthread_mutex_unlock(&d->lock);
        if (enrolled) {
            send_events(d, now);
            if (refresh) d->need_full = 1;
            if (now >= d->hb_next_ms || refresh) heartbeat(d, now);
        } else if (refresh) {
            pthread_mutex_lock(&d->lock);
            unsigned long long upto = d->refresh_req;
            pthread_mutex_unlock(&d->lock);
            complete_refresh(d, upto, -1, "the agent is not enrolled");
        }
        if (now >= d->prune_next_ms) {
            size_t n = ag_tasks_prune(d->tasks, AG_TASK_KEEP_S);
            if (n)
                AG_INFO("removed %zu task records older than %d days", n, AG_TASK_KEEP_S / 86400);
            d->prune_next_ms = now + 3600 * 1000LL;
        }

        pthread_mutex_lock(&d->lock);
        enrolled = d->enrolled;
        long long due = enrolled ? d->hb_next_ms : d->enroll_next_ms;
        if (due < next) next = due;
        if (!d->stop && !d->wake && next > ag_mono_ms()) {
            struct timespec until = {next / 1000, (next % 1000) * 1000000L};
            pthread_cond_timedwait(&d->cond, &d->lock, &until);
        }
        pthread_mutex_unlock(&d->lock);
    }
    AG_INFO("bic-agent stopping");
    return 0;
}

void ag_daemon_free(ag_daemon *d)
{
    if (!d) return;
    /* no new tasks, then let the running one finish, then the hypervisor */
    ag_listener_stop(d->listener);
    ag_tasks_free(d->tasks);
    /* after this no lifecycle callback runs, so the queue can be emptied */
    ag_hv_free(d->hv);
    for (size_t i = 0; i < d->ev_count; i++)
        ag_event_clear(&d->events[(d->ev_head + i) % AG_EVENTS_MAX]);
    d->ev_count = 0;
    ag_snapshot_clear(&d->acked);
    ag_http_free(d->http);
    ag_http_free(d->worker_http);
    ag_nonces_free(d->nonces);
    if (d->lock_fd >= 0) close(d->lock_fd);
    ag_state_wipe(&d->st);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
