#include "controller.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "broker.h"
#include "catalog.h"
#include "db.h"
#include "directory.h"
#include "drs.h"
#include "http.h"
#include "log.h"
#include "pools.h"
#include "recovery.h"
#include "power.h"
#include "session.h"
#include "sign.h"

static struct {
    const bic_config *cfg;
    volatile sig_atomic_t *stopping;
    pthread_t thread;
    bool started;
    char holder[128];
    bool leader;
} ctl;

#define LEASE "controller"
#define BATCH 64

/* A request-like context so that audit_write_as and DB_EXEC log with an id. */
static void fake_req(bic_req *req, bic_db *db, bic_arena *a, const char *what)
{
    memset(req, 0, sizeof(*req));
    req->db = db;
    req->arena = a;
    req->cfg = ctl.cfg;
    snprintf(req->request_id, sizeof(req->request_id), "ctl-%s", what);
    req->remote_addr = "";
}

static bool lease_tick(bic_db *db, bic_arena *a)
{
    bic_rows rows;
    if (DB_EXEC(db, a, STMT_lease_acquire, NULL, P_STR(LEASE), P_STR(ctl.holder),
                P_INT(ctl.cfg->leader_lease_seconds)) != BIC_E_OK ||
        DB_EXEC(db, a, STMT_lease_holder, &rows, P_STR(LEASE)) != BIC_E_OK || rows.nrows != 1)
        return false; /* cannot tell: act as a follower */
    bool leader = !strcmp(rows_str(&rows, 0, 0), ctl.holder);
    if (leader != ctl.leader)
        LOG_INFO(NULL, "controller: %s the leader lease (%s)", leader ? "took" : "lost",
                 ctl.holder);
    return leader;
}

/* ---- health: servers that stopped heartbeating ---- */

static bic_err health_tx(bic_db *db, void *arg)
{
    bic_arena *a = arg;
    bic_rows rows;
    long long window = 3 * ctl.cfg->agents_heartbeat_interval;
    bic_err e = DB_EXEC(db, a, STMT_servers_overdue, &rows, P_INT(window));
    bic_req req;
    fake_req(&req, db, a, "health");
    for (size_t i = 0; e == BIC_E_OK && i < rows.nrows; i++) {
        long long id = rows_int(&rows, i, 0);
        e = DB_EXEC(db, a, STMT_server_mark_offline, NULL, P_INT(id));
        if (e == BIC_E_OK)
            e = DB_EXEC(db, a, STMT_event_insert, NULL, P_INT(id), P_NULL, P_STR("offline"),
                        P_STR(arena_printf(a, "no heartbeat for %lld s", window)));
        if (e == BIC_E_OK)
            e = audit_write_as(
                &req, 0, "system", "server.offline", "server", arena_printf(a, "%lld", id), true,
                json_pack("{s:s, s:s, s:I}", "hostname", rows_str(&rows, i, 1), "was",
                          rows_str(&rows, i, 2), "missed_seconds", (json_int_t)window));
        if (e == BIC_E_OK)
            LOG_WARN(NULL, "server %lld (%s) is offline: no heartbeat for %lld s", id,
                     rows_str(&rows, i, 1), window);
    }
    return e;
}

/* ---- tasks ---- */

struct push {
    long long id, server_id, attempts, max_attempts;
    char *body, *url, sig_header[128];
    CURL *easy;
    struct curl_slist *headers;
    char error[CURL_ERROR_SIZE];
    long status;
    CURLcode rc;
};

struct due {
    bic_arena *a;
    struct push p[BATCH];
    size_t n;
};

static size_t discard(void *ptr, size_t size, size_t nmemb, void *user)
{
    (void)ptr;
    (void)user;
    return size * nmemb;
}

static bic_err claim_tx(bic_db *db, void *arg)
{
    struct due *d = arg;
    d->n = 0;
    bic_rows rows;
    bic_err e = DB_EXEC(db, d->a, STMT_task_due, &rows, P_INT(BATCH));
    for (size_t i = 0; e == BIC_E_OK && i < rows.nrows; i++) {
        struct push *p = &d->p[d->n];
        memset(p, 0, sizeof(*p));
        p->id = rows_int(&rows, i, 0);
        p->server_id = rows_int(&rows, i, 1);
        p->attempts = rows_int(&rows, i, 4) + 1;
        p->max_attempts = rows_int(&rows, i, 5);
        const char *base = rows_str(&rows, i, 6);
        json_error_t jerr;
        json_t *params = json_loads(rows_str(&rows, i, 3), 0, &jerr);
        char *txt = sign_task_envelope(p->id, p->server_id, rows_str(&rows, i, 2), params,
                                       p->sig_header);
        p->body = txt ? arena_strdup(d->a, txt) : NULL;
        free(txt);
        p->url = base && *base ? arena_printf(d->a, "%s/v1/tasks", base) : NULL;
        e = DB_EXEC(db, d->a, STMT_task_mark_sent, NULL, P_INT(p->id));
        d->n++;
    }
    return e;
}

static void push_all(struct due *d)
{
    CURLM *multi = curl_multi_init();
    for (size_t i = 0; i < d->n; i++) {
        struct push *p = &d->p[i];
        if (!p->url) {
            p->rc = CURLE_URL_MALFORMAT;
            snprintf(p->error, sizeof(p->error), "the agent gave no listen_url");
            continue;
        }
        if (!p->body) {
            p->rc = CURLE_SSL_ENGINE_INITFAILED;
            snprintf(p->error, sizeof(p->error), "cannot sign the task");
            continue;
        }
        p->headers = curl_slist_append(NULL, "Content-Type: application/json");
        p->headers = curl_slist_append(p->headers, p->sig_header);
        p->easy = curl_easy_init();
        curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
        curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body);
        curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
        curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, ctl.cfg->agents_push_timeout_ms);
        curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS, ctl.cfg->agents_push_timeout_ms);
        curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->error);
        curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(p->easy, CURLOPT_PRIVATE, p);
        curl_multi_add_handle(multi, p->easy);
    }
    int running = 1;
    while (running) {
        if (curl_multi_perform(multi, &running) != CURLM_OK) break;
        if (running) curl_multi_poll(multi, NULL, 0, 200, NULL);
    }
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left)))
        if (m->msg == CURLMSG_DONE) {
            struct push *p;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&p);
            p->rc = m->data.result;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &p->status);
        }
    for (size_t i = 0; i < d->n; i++) {
        struct push *p = &d->p[i];
        if (p->easy) {
            curl_multi_remove_handle(multi, p->easy);
            curl_easy_cleanup(p->easy);
        }
        curl_slist_free_all(p->headers);
    }
    curl_multi_cleanup(multi);
}

static void settle(bic_db *db, struct due *d)
{
    for (size_t i = 0; i < d->n; i++) {
        struct push *p = &d->p[i];
        if (p->rc == CURLE_OK && p->status >= 200 && p->status < 300)
            continue; /* the agent reports */
        const char *why = p->rc != CURLE_OK
                              ? arena_printf(d->a, "agent unreachable: %s",
                                             p->error[0] ? p->error : curl_easy_strerror(p->rc))
                              : arena_printf(d->a, "agent refused the task: HTTP %ld", p->status);
        if (p->attempts >= p->max_attempts) {
            DB_EXEC(db, d->a, STMT_task_fail_sent, NULL,
                    P_STR(arena_printf(d->a, "%s (%lld attempts)", why, p->attempts)),
                    P_INT(p->id));
            LOG_WARN(NULL, "task %lld failed: %s", p->id, why);
        } else {
            long long backoff = 1LL << (p->attempts < 6 ? p->attempts : 6);
            DB_EXEC(db, d->a, STMT_task_retry_later, NULL, P_STR(why),
                    P_INT(backoff > 60 ? 60 : backoff), P_INT(p->id));
        }
    }
}

static bic_err stale_tx(bic_db *db, void *arg)
{
    bic_arena *a = arg;
    bic_rows rows;
    bic_err e = DB_EXEC(db, a, STMT_task_stale, &rows, P_INT(ctl.cfg->agents_task_timeout));
    for (size_t i = 0; e == BIC_E_OK && i < rows.nrows; i++) {
        long long id = rows_int(&rows, i, 0);
        const char *why = arena_printf(a, "no answer from the agent within %ld s (task %s)",
                                       ctl.cfg->agents_task_timeout, rows_str(&rows, i, 3));
        if (rows_int(&rows, i, 1) >= rows_int(&rows, i, 2))
            e = DB_EXEC(db, a, STMT_task_fail, NULL,
                        P_STR(arena_printf(a, "%s (%lld attempts)", why, rows_int(&rows, i, 1))),
                        P_INT(id));
        else
            e = DB_EXEC(db, a, STMT_task_requeue, NULL, P_STR(why), P_INT(id));
    }
    return e;
}

static void tasks_tick(bic_db *db, bic_arena *a)
{
    struct due *d = arena_alloc(a, sizeof(*d));
    d->a = a;
    if (db_tx(db, claim_tx, d) != BIC_E_OK || d->n == 0) return;
    push_all(d);
    settle(db, d);
}

static void *controller_main(void *arg)
{
    (void)arg;
    bic_db *db = db_new(ctl.cfg, ctl.cfg->database_user, ctl.cfg->database_password);
    bic_arena *a = arena_new(0);
    if (!db || !a) {
        LOG_ERROR(NULL, "controller: out of memory");
        db_free(db);
        arena_free(a);
        return NULL;
    }
    db_set_request(db, "ctl");
    long tick = ctl.cfg->leader_tick_ms > 50 ? ctl.cfg->leader_tick_ms : 50;
    struct timespec last_stale = {0}, watching_since = {0};
    bool was_leader = false;
    while (!*ctl.stopping) {
        ctl.leader = lease_tick(db, a);
        arena_reset(a);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        /* Offline detection trusts last_heartbeat_at only after two whole windows in which this
         * leader reached the database: heartbeats refused while it was down (or while no one
         * held the lease) are retried by the agents, whose back-off may have grown meanwhile,
         * and a healthy server must not be marked offline - and then fenced - because the
         * control plane itself was out. */
        if (ctl.leader && !was_leader) watching_since = now;
        was_leader = ctl.leader;
        if (ctl.leader) {
            if (now.tv_sec - watching_since.tv_sec >= 6 * ctl.cfg->agents_heartbeat_interval &&
                db_tx(db, health_tx, a) != BIC_E_OK)
                watching_since = now;
            arena_reset(a);
            catalog_tick(db, a);
            arena_reset(a);
            reconcile_tick(db, a, ctl.cfg, ctl.holder);
            arena_reset(a);
            broker_tick(db, a, ctl.cfg);
            arena_reset(a);
            recovery_tick(db, a, ctl.cfg);
            arena_reset(a);
            dir_tick(db, a, ctl.cfg);
            arena_reset(a);
            power_tick(db, a, ctl.cfg);
            arena_reset(a);
            drs_tick(db, a, ctl.cfg);
            arena_reset(a);
            tasks_tick(db, a);
            arena_reset(a);
            if (now.tv_sec - last_stale.tv_sec >= 5) {
                db_tx(db, stale_tx, a);
                arena_reset(a);
                DB_EXEC(db, a, STMT_events_prune, NULL,
                        P_INT(ctl.cfg->agents_event_retention_days));
                DB_EXEC0(db, a, STMT_sessions_prune, NULL);
                DB_EXEC0(db, a, STMT_throttle_prune, NULL);
                DB_EXEC0(db, a, STMT_mfa_challenges_prune, NULL);
                arena_reset(a);
                last_stale = now;
            }
        }
        for (long slept = 0; slept < tick && !*ctl.stopping; slept += 50) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (ctl.leader) DB_EXEC(db, a, STMT_lease_release, NULL, P_STR(LEASE), P_STR(ctl.holder));
    arena_free(a);
    db_free(db);
    return NULL;
}

void controller_start(const bic_config *cfg, volatile sig_atomic_t *stopping)
{
    ctl.cfg = cfg;
    ctl.stopping = stopping;
    char host[64] = "bicd";
    gethostname(host, sizeof(host) - 1);
    char rnd[RANDOM_TOKEN_LEN + 1] = "";
    random_token(rnd);
    snprintf(ctl.holder, sizeof(ctl.holder), "%s:%ld:%.8s", host, (long)getpid(), rnd);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ctl.started = pthread_create(&ctl.thread, NULL, controller_main, NULL) == 0;
    if (!ctl.started) LOG_ERROR(NULL, "cannot start the controller thread");
}

void controller_stop(void)
{
    if (ctl.started) pthread_join(ctl.thread, NULL);
    ctl.started = false;
    curl_global_cleanup();
}
