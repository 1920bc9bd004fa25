#include "ag_agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "ag_console.h"
#include "ag_domains.h"
#include "ag_events.h"
#include "ag_exec.h"
#include "ag_facts.h"
#include "ag_hoststats.h"
#include "ag_hv.h"
#include "ag_log.h"
#include "ag_nonce.h"
#include "ag_power.h"
#include "ag_sriov.h"
#include "ag_state.h"
#include "ag_tasks.h"
#include "ag_util.h"
#include "ag_verify.h"
#include "version.h"

#define DEFAULT_INTERVAL_S 10
#define REFRESH_WAIT_S     30

#define A_ERROR(a, ...) ag_log_tagged(AG_LOG_ERROR, (a)->tag, __VA_ARGS__)
#define A_WARN(a, ...)  ag_log_tagged(AG_LOG_WARN, (a)->tag, __VA_ARGS__)
#define A_INFO(a, ...)  ag_log_tagged(AG_LOG_INFO, (a)->tag, __VA_ARGS__)
#define A_DEBUG(a, ...) ag_log_tagged(AG_LOG_DEBUG, (a)->tag, __VA_ARGS__)

struct ag_agent {
    const ag_config *cfg;
    ag_agent_opts opts;
    int lock_fd;
    char listen_url[AG_URL_MAX + 1];
    char console_host[AG_CONSOLE_HOST_MAX + 1]; /* host of listen_url: for wildcard VNC listens */
    char tag[96];

    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; a refresh completed, or stop */
    int stop;

    /* identity, read by the listener and the task runner: under lock */
    ag_state st;
    int have_state; /* st holds a server id and CCC's key */
    int enrolled;   /* the credential is believed to work */

    /* lifecycle events from libvirt's thread, a ring of AG_EVENTS_MAX made at the first: under lock
     */
    ag_event *events;
    size_t ev_head, ev_count;
    unsigned long long ev_dropped;

    /* inventory.refresh: the task runner asks, the stepping thread answers; under lock */
    unsigned long long refresh_req, refresh_done;
    long long refresh_seq; /* -1: the last refresh failed with refresh_err */
    char refresh_err[256];

    /* the stepping thread only */
    long long epoch; /* heartbeats are numbered (epoch, seq): wall-clock ms at start, then 1, 2, … */
    long long seq;
    int need_full;
    ag_snapshot acked;
    ag_host_sample sample;
    int have_sample;
    long long interval_s;
    long long hb_next_ms, enroll_next_ms, prune_next_ms;
    unsigned ccc_backoff_s, enroll_backoff_s;

    ag_http *task_http; /* the thread running the tasks: its own handle */
    ag_hv *hv;
    ag_tasks *tasks;
    ag_nonces *nonces;
};

static void wake(ag_agent *a)
{
    a->opts.wake(a->opts.arg);
}

/* ---- heartbeat slots ---- */

long long ag_agent_slot_phase(size_t slot, size_t slots, long long interval_ms)
{
    if (!slots || interval_ms <= 0) return 0;
    return (long long)((unsigned long long)(slot % slots) * (unsigned long long)interval_ms /
                       slots);
}

long long ag_agent_slot_next(long long now_ms, long long phase_ms, long long interval_ms)
{
    if (interval_ms <= 0) return now_ms;
    long long earliest = now_ms + interval_ms / 2;
    long long r = ((earliest - phase_ms) % interval_ms + interval_ms) % interval_ms;
    return r ? earliest + (interval_ms - r) : earliest;
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
static int post_auth(ag_agent *a, ag_http *h, const char *path, const json_t *body, json_t **answer,
                     char *err, size_t errlen)
{
    char bearer[AG_CREDENTIAL_MAX + 32];
    pthread_mutex_lock(&a->lock);
    snprintf(bearer, sizeof(bearer), "%lld.%s", a->st.server_id, a->st.credential);
    pthread_mutex_unlock(&a->lock);
    int status = ag_http_post(h, path, bearer, body, answer, err, errlen);
    explicit_bzero(bearer, sizeof(bearer));
    return status;
}

/* CCC answered: forget the back-off. */
static void ccc_up(ag_agent *a)
{
    if (a->ccc_backoff_s) A_INFO(a, "CCC is reachable again");
    a->ccc_backoff_s = 0;
}

/* A heartbeat failed: back off, and send a full heartbeat when CCC is back. */
static void ccc_down(ag_agent *a, long long now, int status, const char *err, const json_t *answer)
{
    char why[300];
    if (status < 0)
        snprintf(why, sizeof(why), "%.290s", err);
    else
        answer_error(answer, why, sizeof(why));
    unsigned prev = a->ccc_backoff_s;
    a->ccc_backoff_s = ag_backoff_next(prev, AG_CCC_BACKOFF_S);
    a->need_full = 1; /* deltas since the last acknowledged heartbeat are not kept */
    a->hb_next_ms = now + 1000LL * a->ccc_backoff_s;
    if (prev && a->ccc_backoff_s < AG_CCC_BACKOFF_S) return; /* said already */
    if (status < 0)
        A_WARN(a, "heartbeat failed: %s; next try in %u s", why, a->ccc_backoff_s);
    else
        A_WARN(a, "heartbeat failed (HTTP %d): %s; next try in %u s", status, why,
               a->ccc_backoff_s);
}

/* The credential was refused: enroll again with the token, at once. */
static void credential_refused(ag_agent *a, long long now, const char *what)
{
    A_WARN(a, "%s: CCC refused the credential (401): enrolling again", what);
    pthread_mutex_lock(&a->lock);
    a->enrolled = 0;
    pthread_mutex_unlock(&a->lock);
    a->enroll_next_ms = now;
    a->enroll_backoff_s = 0;
    a->need_full = 1;
}

/* ---- enrollment ---- */

static void enroll(ag_agent *a, ag_http *h, long long now)
{
    const ag_config *cfg = a->cfg;
    if (!*cfg->token) {
        A_ERROR(a, "cannot enroll: no enrollment token is configured (token / BIC_AGENT_TOKEN)");
        a->enroll_backoff_s = AG_CCC_BACKOFF_S;
        a->enroll_next_ms = now + 1000LL * a->enroll_backoff_s;
        return;
    }
    virConnectPtr c = ag_hv_conn(a->hv);
    json_t *facts = ag_facts_enroll(cfg->root_prefix, cfg->libvirt_uri, c);
    if (c) virConnectClose(c);
    AG_AUTOJSON json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o*}", "token", cfg->token, "machine_id",
                  cfg->machine_id, "hostname", cfg->hostname, "listen_url", a->listen_url,
                  "agent_version", BIC_VERSION, "facts", facts);
    if (!body) {
        A_ERROR(a, "cannot enroll: out of memory");
        a->enroll_next_ms = now + 1000;
        return;
    }
    /* taking over this machine's row again needs the credential it has (docs/agent-protocol.md) */
    char bearer[AG_CREDENTIAL_MAX + 32] = "";
    pthread_mutex_lock(&a->lock);
    if (a->have_state)
        snprintf(bearer, sizeof(bearer), "%lld.%s", a->st.server_id, a->st.credential);
    pthread_mutex_unlock(&a->lock);
    char err[512];
    AG_AUTOJSON json_t *answer = NULL;
    int status = ag_http_post(h, "/api/v1/agent/enroll", *bearer ? bearer : NULL, body, &answer,
                              err, sizeof(err));
    explicit_bzero(bearer, sizeof(bearer));
    ag_json_wipe_string(json_object_get(body, "token"));
    if (status == 200) {
        ag_state st;
        pthread_mutex_lock(&a->lock);
        st = a->st;
        pthread_mutex_unlock(&a->lock);
        int ok = ag_state_from_enroll(answer, &st, err, sizeof(err)) == 0;
        ag_json_wipe_string(json_object_get(answer, "credential"));
        if (ok) {
            snprintf(st.machine_id, sizeof(st.machine_id), "%s", cfg->machine_id);
            snprintf(st.listen_url, sizeof(st.listen_url), "%s", a->listen_url);
            ok = ag_state_save(cfg->state_dir, &st, err, sizeof(err)) == 0;
        }
        if (ok) {
            pthread_mutex_lock(&a->lock);
            a->st = st;
            a->have_state = a->enrolled = 1;
            pthread_mutex_unlock(&a->lock);
            if (!cfg->heartbeat_interval && st.heartbeat_interval)
                a->interval_s = st.heartbeat_interval;
            A_INFO(a, "enrolled as server %lld (heartbeat every %lld s)", st.server_id,
                   a->interval_s);
            ag_state_wipe(&st);
            a->enroll_backoff_s = 0;
            a->need_full = 1;
            a->hb_next_ms = now;
            ccc_up(a);
            return;
        }
        ag_state_wipe(&st);
        A_ERROR(a, "enrollment answer unusable: %s", err);
    } else if (status < 0) {
        A_WARN(a, "cannot enroll: %s", err);
    } else {
        char why[300];
        answer_error(answer, why, sizeof(why));
        const char *hint = status == 401 ? "the token is unknown, expired or revoked"
                           : status == 409
                               ? "no module has room, or the machine is enrolled and CCC wants its "
                                 "current credential or an admin's reset of the enrollment"
                               : "CCC refused the request";
        A_ERROR(a, "enrollment refused (HTTP %d, %s): %s", status, why, hint);
    }
    a->enroll_backoff_s = ag_backoff_next(a->enroll_backoff_s, AG_CCC_BACKOFF_S);
    a->enroll_next_ms = now + 1000LL * a->enroll_backoff_s;
}

/* ---- heartbeats ---- */

static void complete_refresh(ag_agent *a, unsigned long long upto, long long seq, const char *err)
{
    pthread_mutex_lock(&a->lock);
    if (upto > a->refresh_done) {
        a->refresh_done = upto;
        a->refresh_seq = seq;
        snprintf(a->refresh_err, sizeof(a->refresh_err), "%s", err ? err : "");
        pthread_cond_broadcast(&a->cond);
    }
    pthread_mutex_unlock(&a->lock);
}

/* Milliseconds since the Unix epoch: a restarted agent numbers its heartbeats above its last run. */
static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * CCC refused a heartbeat as a replay (409, reason "replayed"): its (epoch, seq) was not above
 * the last pair CCC accepted, e.g. the clock went back since an earlier run. Continue above it.
 */
static int heartbeat_replayed(ag_agent *a, const json_t *answer)
{
    const json_t *e = json_object_get(answer, "error");
    if (!json_is_string(json_object_get(e, "reason")) ||
        strcmp(json_string_value(json_object_get(e, "reason")), "replayed"))
        return 0;
    long long last = json_integer_value(json_object_get(e, "last_epoch"));
    long long next = wall_ms();
    if (next <= last) next = last + 1;
    if (next <= a->epoch) next = a->epoch + 1;
    A_WARN(a, "CCC refused heartbeat (%lld, %lld) as a replay (it has seen (%lld, %lld)): "
              "numbering again from epoch %lld",
           a->epoch, a->seq, last, (long long)json_integer_value(json_object_get(e, "last_seq")),
           next);
    a->epoch = next;
    a->seq = 0;
    a->need_full = 1;
    return 1;
}

/* When the next heartbeat is due after one CCC took at now. */
static long long next_heartbeat(const ag_agent *a, long long now)
{
    long long iv = 1000LL * a->interval_s;
    if (!a->opts.slots) return now + iv;
    return ag_agent_slot_next(now, ag_agent_slot_phase(a->opts.slot, a->opts.slots, iv), iv);
}

static void heartbeat(ag_agent *a, ag_http *h, long long now)
{
    ag_host_sample s;
    ag_host_sample_read(a->cfg->root_prefix, now, &s);
    ag_host_stats hs;
    ag_host_stats_compute(a->have_sample ? &a->sample : NULL, &s, &hs);
    a->sample = s;
    a->have_sample = 1;

    ag_snapshot cur = {0};
    int have_doms = 0;
    char err[512];
    virConnectPtr c = ag_hv_conn(a->hv);
    if (c) {
        if (ag_domains_collect(c, &a->acked, a->console_host, &cur, err, sizeof(err)) == 0)
            have_doms = 1;
        else if (ag_hv_error_is_fatal())
            ag_hv_mark_lost(a->hv, err);
        else
            A_WARN(a, "cannot list domains: %s", err);
        virConnectClose(c);
    }
    /* an inventory.refresh asked for until now is answered by this heartbeat */
    pthread_mutex_lock(&a->lock);
    unsigned long long refresh_upto = a->refresh_req;
    if (refresh_upto != a->refresh_done) a->need_full = 1;
    pthread_mutex_unlock(&a->lock);

    /* without the hypervisor, desktops are not reported at all (never "full" and empty) */
    int full = have_doms && a->need_full;
    json_t *desktops, *removed = NULL;
    if (!have_doms)
        desktops = json_array(), removed = json_array();
    else if (full) {
        desktops = ag_snapshot_json(&cur), removed = json_array();
        ag_snapshot_mark_sent(&cur, now / 1000);
    } else /* stamps cur's counters_sent_at; cur becomes acked once delivered */
        desktops = ag_snapshot_delta(&a->acked, &cur, now / 1000, &removed);
    long long seq = ++a->seq;
    /* a full heartbeat also carries the NIC and VF inventory, discovered afresh */
    json_t *nics = full ? ag_sriov_collect(a->cfg->root_prefix) : NULL;
    AG_AUTOJSON json_t *body = json_pack(
        "{s:I, s:I, s:b, s:o*, s:o*, s:o*, s:o*}", "seq", (json_int_t)seq, "epoch",
        (json_int_t)a->epoch, "full", full, "host",
        ag_host_stats_json(&hs), "desktops", desktops, "removed", removed, "nics", nics);
    if (!body || !json_object_get(body, "host") || !json_object_get(body, "desktops") ||
        !json_object_get(body, "removed") || (full && !json_object_get(body, "nics"))) {
        A_ERROR(a, "heartbeat: out of memory");
        ag_snapshot_clear(&cur);
        a->hb_next_ms = now + 1000;
        return;
    }
    AG_AUTOJSON json_t *answer = NULL;
    int status = post_auth(a, h, "/api/v1/agent/heartbeat", body, &answer, err, sizeof(err));
    if (status >= 200 && status < 300) {
        ccc_up(a);
        if (have_doms) ag_snapshot_move(&a->acked, &cur);
        int resync = json_is_true(json_object_get(answer, "resync"));
        json_t *iv = json_object_get(answer, "interval");
        if (!a->cfg->heartbeat_interval && json_is_integer(iv) && json_integer_value(iv) >= 1 &&
            json_integer_value(iv) <= 3600 && json_integer_value(iv) != a->interval_s) {
            a->interval_s = json_integer_value(iv);
            A_INFO(a, "heartbeat interval is now %lld s", a->interval_s);
        }
        if (resync) A_INFO(a, "CCC asked for a full heartbeat (resync after seq %lld)", seq);
        a->need_full = resync || (a->need_full && !have_doms);
        a->hb_next_ms = resync ? now : next_heartbeat(a, now);
        A_DEBUG(a, "heartbeat %lld sent (%s, %zu desktops)", seq, full ? "full" : "delta",
                json_array_size(json_object_get(body, "desktops")));
        complete_refresh(a, refresh_upto, full ? seq : -1,
                         full ? NULL : "no full heartbeat: the domains cannot be listed");
    } else if (status == 401) {
        credential_refused(a, now, "heartbeat");
        complete_refresh(a, refresh_upto, -1, "CCC refused the credential");
    } else if (status == 409 && heartbeat_replayed(a, answer)) {
        ccc_up(a);
        a->hb_next_ms = now; /* at once, full, with the new numbering (it answers a refresh) */
    } else {
        ccc_down(a, now, status, err, answer);
        complete_refresh(a, refresh_upto, -1, "heartbeat not delivered");
    }
    ag_snapshot_clear(&cur);
}

/* ---- events ---- */

static void on_event(void *arg, ag_event *ev)
{
    ag_agent *a = arg;
    pthread_mutex_lock(&a->lock);
    if (!a->events && !(a->events = calloc(AG_EVENTS_MAX, sizeof(*a->events)))) {
        ag_event_clear(ev);
        a->ev_dropped++;
    } else {
        if (a->ev_count == AG_EVENTS_MAX) {
            ag_event_clear(&a->events[a->ev_head]);
            a->ev_head = (a->ev_head + 1) % AG_EVENTS_MAX;
            a->ev_count--;
            a->ev_dropped++;
        }
        a->events[(a->ev_head + a->ev_count) % AG_EVENTS_MAX] = *ev;
        a->ev_count++;
    }
    pthread_mutex_unlock(&a->lock);
    wake(a);
}

static void on_hv_wake(void *arg)
{
    wake(arg);
}

/* Takes every queued event out into a new array (*evs, freed by the caller). Returns how many. */
static size_t take_events(ag_agent *a, ag_event **evs, unsigned long long *dropped)
{
    pthread_mutex_lock(&a->lock);
    size_t n = a->ev_count;
    *evs = n ? malloc(n * sizeof(**evs)) : NULL;
    if (*evs) {
        for (size_t i = 0; i < n; i++)
            (*evs)[i] = a->events[(a->ev_head + i) % AG_EVENTS_MAX];
    } else {
        /* out of memory: the events are lost, the full heartbeat that follows tells all */
        for (size_t i = 0; i < n; i++)
            ag_event_clear(&a->events[(a->ev_head + i) % AG_EVENTS_MAX]);
        a->ev_dropped += n;
        n = 0;
    }
    a->ev_head = a->ev_count = 0;
    *dropped = a->ev_dropped;
    a->ev_dropped = 0;
    pthread_mutex_unlock(&a->lock);
    return n;
}

/* POSTs events[0..n) (states resolved). Returns 0, or -1 when they were not delivered. */
static int post_events(ag_agent *a, ag_http *h, long long now, const ag_event *evs, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, ag_event_json(&evs[i]));
    AG_AUTOJSON json_t *body = json_pack("{s:o*}", "events", arr);
    if (!body) {
        A_ERROR(a, "events: out of memory");
        a->need_full = 1;
        return -1;
    }
    char err[512];
    AG_AUTOJSON json_t *answer = NULL;
    int status = post_auth(a, h, "/api/v1/agent/events", body, &answer, err, sizeof(err));
    if (status >= 200 && status < 300) return 0;
    if (status == 401) {
        credential_refused(a, now, "events");
        return -1;
    }
    char why[300];
    if (status < 0)
        snprintf(why, sizeof(why), "%.290s", err);
    else
        answer_error(answer, why, sizeof(why));
    A_WARN(a, "%zu lifecycle events not delivered (%d: %s); a full heartbeat follows", n, status,
           why);
    a->need_full = 1;
    return -1;
}

static void send_events(ag_agent *a, ag_http *h, long long now)
{
    AG_AUTOFREE ag_event *evs = NULL;
    unsigned long long dropped;
    size_t n = take_events(a, &evs, &dropped);
    if (dropped) {
        A_WARN(a, "%llu lifecycle events dropped (queue full); a full heartbeat follows", dropped);
        a->need_full = 1;
    }
    if (!n) return;
    if (a->ccc_backoff_s) {
        /* CCC is down: stale events would only undo the full heartbeat that follows */
        for (size_t i = 0; i < n; i++)
            ag_event_clear(&evs[i]);
        A_DEBUG(a, "%zu lifecycle events dropped while CCC is unreachable", n);
        a->need_full = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ag_event_resolve_state(&evs[i]);
        if (*evs[i].console)
            A_INFO(a, "domain %s (%s): console %s", evs[i].name, evs[i].uuid, evs[i].console);
        else
            A_INFO(a, "domain %s (%s): %s/%s -> %s", evs[i].name, evs[i].uuid,
                   ag_event_name(evs[i].event), ag_event_detail(evs[i].event, evs[i].detail),
                   evs[i].state);
    }
    /* in order, AG_EVENTS_PER_POST at a time; after a failure the full heartbeat tells the rest */
    for (size_t i = 0; i < n; i += AG_EVENTS_PER_POST)
        if (post_events(a, h, now, evs + i,
                        n - i < AG_EVENTS_PER_POST ? n - i : AG_EVENTS_PER_POST) < 0)
            break;
}

/* ---- tasks ---- */

int ag_agent_on_task(ag_agent *a, const char *body, size_t len, const char *sig, char **answer)
{
    if (ag_power_is_off(a->cfg)) { /* a simulated powered-off host answers nothing useful */
        *answer = strdup("{\"error\":\"powered_off\"}");
        return 503;
    }
    unsigned char key[AG_SIG_KEY_LEN];
    pthread_mutex_lock(&a->lock);
    int have = a->have_state;
    long long server_id = a->st.server_id;
    memcpy(key, a->st.key, sizeof(key));
    pthread_mutex_unlock(&a->lock);

    ag_task_req req;
    char why[300] = "the agent has not enrolled yet";
    ag_verdict v = AG_V_NOT_ENROLLED;
    if (have)
        v = ag_verify_task(key, server_id, a->nonces, (long long)time(NULL), body, len, sig, &req,
                           why, sizeof(why));
    if (v == AG_V_OK) {
        switch (ag_tasks_submit(a->tasks, &req)) {
        case AG_SUBMIT_QUEUED:
            A_INFO(a, "task %lld (%s) accepted", req.task_id, req.type);
            break;
        case AG_SUBMIT_KNOWN:
            A_INFO(a, "task %lld (%s) delivered again: not run again, its state is reported",
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
        A_WARN(a, "task request refused (%d %s): %s", ag_verdict_status(v), ag_verdict_name(v),
               why);
    if (v == AG_V_OK)
        *answer = strdup("{\"accepted\":true}");
    else if (asprintf(answer, "{\"error\":\"%s\"}", ag_verdict_name(v)) < 0)
        *answer = NULL;
    return ag_verdict_status(v);
}

/* ---- calls ---- */

/* {"ok":false,"error":error} as a malloc'd text, or NULL. */
static char *call_error(const char *error)
{
    AG_AUTOJSON json_t *j = json_pack("{s:b, s:s}", "ok", 0, "error", error);
    return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

int ag_agent_on_call(ag_agent *a, const char *body, size_t len, const char *sig, char **answer)
{
    unsigned char key[AG_SIG_KEY_LEN];
    pthread_mutex_lock(&a->lock);
    int have = a->have_state;
    long long server_id = a->st.server_id;
    memcpy(key, a->st.key, sizeof(key));
    pthread_mutex_unlock(&a->lock);

    ag_task_req req;
    char why[300] = "the agent has not enrolled yet";
    ag_verdict v = AG_V_NOT_ENROLLED;
    if (have)
        v = ag_verify_call(key, server_id, a->nonces, (long long)time(NULL), body, len, sig, &req,
                           why, sizeof(why));
    if (v != AG_V_OK) {
        A_WARN(a, "call refused (%d %s): %s", ag_verdict_status(v), ag_verdict_name(v), why);
        *answer = call_error(ag_verdict_name(v));
        return ag_verdict_status(v);
    }
    virConnectPtr c = ag_hv_conn(a->hv);
    AG_AUTOJSON json_t *result = NULL;
    char err[512] = "";
    long long t0 = ag_mono_ms();
    int status = ag_exec_call(c, a->console_host, req.type, req.params, &result, err, sizeof(err));
    if (status == 503 && c) ag_hv_mark_lost(a->hv, err);
    if (c) virConnectClose(c);
    const char *uuid = json_string_value(json_object_get(req.params, "uuid"));
    if (status == 200)
        A_INFO(a, "call %s%s%.36s: done in %lld ms", req.type, uuid ? " of " : "", uuid ? uuid : "",
               ag_mono_ms() - t0);
    else
        A_WARN(a, "call %s%s%.36s failed (%d): %s", req.type, uuid ? " of " : "", uuid ? uuid : "",
               status, err);
    ag_json_wipe_string(json_object_get(req.params, "password"));
    ag_task_req_clear(&req);
    if (status != 200) {
        *answer = call_error(err);
        return status;
    }
    AG_AUTOJSON json_t *ok = json_pack("{s:b, s:O}", "ok", 1, "result", result);
    *answer = ok ? json_dumps(ok, JSON_COMPACT) : NULL;
    return *answer ? 200 : 500;
}

static int task_refresh(void *arg, long long *seq, char *err, size_t errlen)
{
    ag_agent *a = arg;
    pthread_mutex_lock(&a->lock);
    unsigned long long mine = ++a->refresh_req;
    pthread_mutex_unlock(&a->lock);
    wake(a);
    pthread_mutex_lock(&a->lock);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += REFRESH_WAIT_S;
    while (a->refresh_done < mine && !a->stop)
        if (pthread_cond_timedwait(&a->cond, &a->lock, &until) == ETIMEDOUT) break;
    int rc = -1;
    if (a->refresh_done < mine)
        snprintf(err, errlen, "no full heartbeat within %d s", REFRESH_WAIT_S);
    else if (a->refresh_seq < 0)
        snprintf(err, errlen, "%s", a->refresh_err);
    else
        *seq = a->refresh_seq, rc = 0;
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* "<server_id>.<credential>" for the provisioning tasks' requests to CCC. */
static int task_bearer(void *arg, char *buf, size_t len)
{
    ag_agent *a = arg;
    pthread_mutex_lock(&a->lock);
    int have = a->have_state;
    if (have) snprintf(buf, len, "%lld.%s", a->st.server_id, a->st.credential);
    pthread_mutex_unlock(&a->lock);
    return have ? 0 : -1;
}

static int task_execute(void *arg, const char *type, const json_t *params, json_t **result,
                        char *err, size_t errlen)
{
    ag_agent *a = arg;
    ag_exec_env env = {.conn = ag_hv_conn(a->hv),
                       .refresh = task_refresh,
                       .arg = a,
                       .cfg = a->cfg,
                       .http = a->task_http,
                       .bearer = task_bearer,
                       .mgmt_host = a->console_host,
                       .peer_conn = a->opts.peer_conn,
                       .peer_arg = a->opts.arg};
    int rc = ag_exec_task(&env, type, params, result, err, errlen);
    if (rc < 0 && env.conn && ag_hv_error_is_fatal()) ag_hv_mark_lost(a->hv, err);
    if (env.conn) virConnectClose(env.conn);
    return rc;
}

static int task_report(void *arg, long long id, const json_t *body)
{
    ag_agent *a = arg;
    char path[96], err[512];
    snprintf(path, sizeof(path), "/api/v1/agent/tasks/%lld/status", id);
    int status = post_auth(a, a->task_http, path, body, NULL, err, sizeof(err));
    if (status < 0) A_DEBUG(a, "task %lld status: %s", id, err);
    return status;
}

static void tasks_ready(void *arg)
{
    ag_agent *a = arg;
    a->opts.tasks_ready(a->opts.arg);
}

int ag_agent_start_worker(ag_agent *a, ag_http *h, char *err, size_t errlen)
{
    a->task_http = h;
    return ag_tasks_start(a->tasks, err, errlen);
}

int ag_agent_work_task(ag_agent *a, ag_http *h)
{
    a->task_http = h;
    int ran = ag_tasks_work_one(a->tasks);
    a->task_http = NULL;
    return ran;
}

/* ---- set-up and the step ---- */

static int lock_state_dir(ag_agent *a, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/agent.lock", a->cfg->state_dir);
    a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->lock_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "state_dir %s is in use by another bic-agent", a->cfg->state_dir);
        return -1;
    }
    return 0;
}

/* Loads state.json and decides whether to enroll. Returns 0 or -1 with err. */
static int load_state(ag_agent *a, char *err, size_t errlen)
{
    const ag_config *cfg = a->cfg;
    char why[400];
    int rc = ag_state_load(cfg->state_dir, &a->st, why, sizeof(why));
    if (rc < 0) A_ERROR(a, "ignoring the state file: %s", why);
    if (rc == 0 && strcmp(a->st.machine_id, cfg->machine_id)) {
        A_WARN(a, "machine_id changed since enrollment: enrolling again");
        ag_state_wipe(&a->st);
        rc = 1;
    }
    if (rc == 0) {
        a->have_state = a->enrolled = 1;
        if (strcmp(a->st.listen_url, a->listen_url)) {
            if (*cfg->token) {
                A_INFO(a, "listener moved from %s to %s: enrolling again to tell CCC",
                       a->st.listen_url, a->listen_url);
                a->enrolled = 0;
            } else {
                A_WARN(a, "listener moved from %s to %s but there is no token to tell CCC",
                       a->st.listen_url, a->listen_url);
            }
        }
        if (a->enrolled) A_INFO(a, "enrolled as server %lld", a->st.server_id);
        return 0;
    }
    if (!*cfg->token) {
        snprintf(err, errlen, "not enrolled and no enrollment token configured (token)");
        return -1;
    }
    return 0;
}

ag_agent *ag_agent_new(const ag_config *cfg, const ag_agent_opts *opts, char *err, size_t errlen)
{
    ag_agent *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->cfg = cfg;
    a->opts = *opts;
    a->opts.listen_url = NULL;
    a->opts.log_tag = NULL;
    a->lock_fd = -1;
    a->interval_s = cfg->heartbeat_interval ? cfg->heartbeat_interval : DEFAULT_INTERVAL_S;
    a->need_full = 1;
    a->epoch = wall_ms();
    snprintf(a->tag, sizeof(a->tag), "%s", opts->log_tag ? opts->log_tag : "");
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_condattr_destroy(&ca);

    if (ag_strlcpy(a->listen_url, opts->listen_url ? opts->listen_url : "", sizeof(a->listen_url)) <
        0) {
        snprintf(err, errlen, "the listen URL is too long");
        goto fail;
    }
    if (*a->listen_url &&
        ag_console_url_host(a->listen_url, a->console_host, sizeof(a->console_host)) < 0)
        A_WARN(a,
               "no console host from the listen URL %s: consoles listening on every address "
               "are not reported",
               a->listen_url);
    if (ag_mkdir_p(cfg->state_dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create state_dir %s: %s", cfg->state_dir, strerror(errno));
        goto fail;
    }
    if (lock_state_dir(a, err, errlen) < 0) goto fail;
    if (!(a->nonces = ag_nonces_new(AG_NONCE_WINDOW_S, AG_NONCE_MAX))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    ag_task_ops ops = {task_execute, task_report, a, opts->tasks_ready ? tasks_ready : NULL};
    if (!(a->tasks = ag_tasks_new(cfg->state_dir, &ops, err, errlen))) goto fail;
    if (load_state(a, err, errlen) < 0) goto fail;
    /*
     * VFs to enable (sriov_numvfs). A fleet's members share root_prefix: the first sets the
     * counts, the others find them set. A PF that cannot be set is logged, not fatal: the
     * inventory in the heartbeat shows CCC what there is.
     */
    if (*cfg->sriov_numvfs) ag_sriov_apply_numvfs(cfg->root_prefix, cfg->sriov_numvfs, a->tag);
    ag_hv_ops hops = {on_event, on_hv_wake, a};
    if (!(a->hv = ag_hv_new(cfg->libvirt_uri, &hops))) {
        snprintf(err, errlen, "cannot start libvirt's event loop");
        goto fail;
    }
    return a;
fail:
    ag_agent_free(a);
    return NULL;
}

void ag_agent_stop(ag_agent *a)
{
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (a->tasks) ag_tasks_stop(a->tasks);
}

virConnectPtr ag_agent_conn(ag_agent *a)
{
    return ag_hv_conn(a->hv);
}

const char *ag_agent_listen_url(const ag_agent *a)
{
    return a->listen_url;
}

long long ag_agent_server_id(ag_agent *a)
{
    pthread_mutex_lock(&a->lock);
    long long id = a->enrolled ? a->st.server_id : 0;
    pthread_mutex_unlock(&a->lock);
    return id;
}

long long ag_agent_step(ag_agent *a, ag_http *h, long long now)
{
    pthread_mutex_lock(&a->lock);
    int enrolled = a->enrolled;
    int refresh = a->refresh_req != a->refresh_done;
    pthread_mutex_unlock(&a->lock);

    if (ag_power_is_off(a->cfg)) { /* simulated power-off: silent until the file goes */
        a->need_full = 1;
        a->hb_next_ms = 0;
        return now + 500;
    }
    long long next = now + AG_MAX_SLEEP_MS;
    if (ag_hv_tick(a->hv, now, &next)) a->need_full = 1;
    if (!enrolled && now >= a->enroll_next_ms) enroll(a, h, now);
    pthread_mutex_lock(&a->lock);
    enrolled = a->enrolled;
    pthread_mutex_unlock(&a->lock);
    if (enrolled) {
        send_events(a, h, now);
        if (refresh) a->need_full = 1;
        if (now >= a->hb_next_ms || refresh) heartbeat(a, h, now);
    } else if (refresh) {
        pthread_mutex_lock(&a->lock);
        unsigned long long upto = a->refresh_req;
        pthread_mutex_unlock(&a->lock);
        complete_refresh(a, upto, -1, "the agent is not enrolled");
    }
    if (now >= a->prune_next_ms) {
        size_t n = ag_tasks_prune(a->tasks, AG_TASK_KEEP_S);
        if (n) A_INFO(a, "removed %zu task records older than %d days", n, AG_TASK_KEEP_S / 86400);
        a->prune_next_ms = now + 3600 * 1000LL;
    }

    pthread_mutex_lock(&a->lock);
    enrolled = a->enrolled;
    pthread_mutex_unlock(&a->lock);
    long long due = enrolled ? a->hb_next_ms : a->enroll_next_ms;
    return due < next ? due : next;
}

void ag_agent_free(ag_agent *a)
{
    if (!a) return;
    /* let the running task finish, then the hypervisor */
    ag_tasks_free(a->tasks);
    /* after this no lifecycle callback runs, so the queue can be emptied */
    ag_hv_free(a->hv);
    for (size_t i = 0; i < a->ev_count; i++)
        ag_event_clear(&a->events[(a->ev_head + i) % AG_EVENTS_MAX]);
    free(a->events);
    ag_snapshot_clear(&a->acked);
    ag_nonces_free(a->nonces);
    if (a->lock_fd >= 0) close(a->lock_fd);
    ag_state_wipe(&a->st);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
