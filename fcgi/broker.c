/*
 * broker.c - what the broker's API and the leader share: policies as JSON, the
 * synchronous agent call that sets a desktop's VNC password, ending a session and
 * the leader's pass over live sessions.
 */
#include "broker.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "audit.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "session.h"
#include "sign.h"

json_t *broker_policy_json(const bic_rows *r, size_t i, size_t c)
{
    json_t *nets = json_array();
    const char *list = rows_str(r, i, c + 5);
    for (const char *p = list ? list : ""; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n) json_array_append_new(nets, json_stringn(p, n));
        p += n;
    }
    return json_pack("{s:s, s:b, s:I, s:I, s:I, s:o, s:I, s:b, s:b}", "clipboard",
                     rows_str(r, i, c), "view_only", (int)rows_int(r, i, c + 1), "max_session_s",
                     (json_int_t)rows_int(r, i, c + 2), "idle_timeout_s",
                     (json_int_t)rows_int(r, i, c + 3), "disconnect_timeout_s",
                     (json_int_t)rows_int(r, i, c + 4), "allowed_networks", nets,
                     "max_sessions_per_user", (json_int_t)rows_int(r, i, c + 6), "user_power",
                     (int)rows_int(r, i, c + 7), "refresh_on_logoff", (int)rows_int(r, i, c + 8));
}

bool broker_cidr_valid(const char *s)
{
    char net[64];
    size_t n = strlen(s);
    if (!n || n >= sizeof(net)) return false;
    memcpy(net, s, n + 1);
    char *slash = strchr(net, '/');
    long bits = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        if (!slash[1] || slash[1] == '-' || slash[1] == '+') return false;
        bits = strtol(slash + 1, &end, 10);
        if (*end || bits < 0) return false;
    }
    unsigned char buf[16];
    bool v6 = strchr(net, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, net, buf) != 1) return false;
    return bits <= (v6 ? 128 : 32);
}

int broker_vnc_password(char out[9])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[8];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) return -1;
    for (size_t i = 0; i < 8; i++)
        out[i] = alphabet[raw[i] % 62]; /* 62 of 256: a bias of under 2 %, fine for 8 chars */
    out[8] = '\0';
    return 0;
}

/* ---- the synchronous agent call ---- */

struct answer {
    char buf[16384];
    size_t len;
};

static size_t collect(void *ptr, size_t size, size_t nmemb, void *user)
{
    struct answer *a = user;
    size_t n = size * nmemb;
    size_t room = sizeof(a->buf) - 1 - a->len;
    memcpy(a->buf + a->len, ptr, n < room ? n : room);
    a->len += n < room ? n : room;
    a->buf[a->len] = '\0';
    return n;
}

int broker_agent_call(const bic_config *cfg, long long server_id, const char *listen_url,
                      const char *type, json_t *params, json_t **result, char *err, size_t errlen)
{
    *result = NULL;
    if (!listen_url || !*listen_url) {
        snprintf(err, errlen, "the agent gave no listen_url");
        json_decref(params);
        return -1;
    }
    char sig_header[128], url[512];
    char *txt = sign_task_envelope(0, server_id, type, params, sig_header);
    if (!txt) {
        snprintf(err, errlen, "cannot sign the call");
        return -1;
    }
    snprintf(url, sizeof(url), "%s/v1/call", listen_url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, sig_header);
    struct answer *ans = calloc(1, sizeof(*ans));
    CURL *c = curl_easy_init();
    int rc = -1;
    if (!c || !ans || !h) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    long timeout = cfg->broker_agent_timeout_ms > 0 ? cfg->broker_agent_timeout_ms : 15000;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, txt);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ans);
    CURLcode cc;
    long status = 0;
    /* an agent runs a few calls at once and answers 503 to more: try again shortly */
    for (int attempt = 0;; attempt++) {
        ans->len = 0;
        ans->buf[0] = '\0';
        cc = curl_easy_perform(c);
        status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK || status != 503 || attempt == 5) break;
        struct timespec ts = {0, (attempt + 1) * 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "agent unreachable: %s", cerr[0] ? cerr : curl_easy_strerror(cc));
        goto out;
    }
    json_error_t jerr;
    json_t *j = json_loads(ans->buf, 0, &jerr);
    if (status != 200 || !j || !json_is_true(json_object_get(j, "ok"))) {
        const char *why = json_string_value(json_object_get(j, "error"));
        snprintf(err, errlen, "the agent refused %s: HTTP %ld%s%.200s", type, status, why ? ": " : "",
                 why ? why : "");
        json_decref(j);
        goto out;
    }
    json_t *r = json_object_get(j, "result");
    *result = json_is_object(r) ? json_incref(r) : NULL;
    json_decref(j);
    rc = 0;
out:
    if (c) curl_easy_cleanup(c);
    curl_slist_free_all(h);
    free(ans);
    free(txt);
    return rc;
}

/* ---- sessions ---- */

bic_err broker_end_session(bic_req *req, long long id, const char *reason, const char *by,
                           long long *kick, bool *ended)
{
    *kick = 0;
    *ended = false;
    bic_rows s;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_session_lock, &s, P_INT(id));
    if (e != BIC_E_OK || s.nrows != 1) return e;
    if (!strcmp(rows_str(&s, 0, 2), "logged_off")) return BIC_E_OK;
    e = DB_EXEC(req->db, req->arena, STMT_session_end, NULL, P_STR(reason), P_STR(by), P_INT(id));
    if (e == BIC_E_OK)
        e = DB_EXEC(req->db, req->arena, STMT_session_tickets_drop, NULL, P_INT(id));
    if (e != BIC_E_OK) return e;
    *ended = true;
    const char *desktop = rows_str(&s, 0, 3), *type = rows_str(&s, 0, 5),
               *phase = rows_str(&s, 0, 7);
    if (desktop && phase) {
        long long d = rows_int(&s, 0, 3);
        bool floating = type && !strcmp(type, "floating");
        bool refresh = floating && rows_int(&s, 0, 6) && !strcmp(phase, "ready");
        if (floating)
            e = DB_EXEC(req->db, req->arena, STMT_session_release_desktop, NULL, P_INT(refresh),
                        P_INT(d));
        /* a refresh replaces the domain, which closes its console anyway */
        if (!refresh && strcmp(phase, "deleting")) *kick = d;
    }
    if (e != BIC_E_OK) return e;
    return audit_write(req, "session.logoff", "session",
                       arena_printf(req->arena, "%lld", id), true,
                       json_pack("{s:s, s:s, s:I}", "reason", reason, "by", by, "user_id",
                                 (json_int_t)rows_int(&s, 0, 1)));
}

void broker_kick(bic_db *db, bic_arena *a, const bic_config *cfg, long long desktop_id)
{
    bic_rows d;
    if (!desktop_id || DB_EXEC(db, a, STMT_broker_desktop, &d, P_INT(desktop_id)) != BIC_E_OK ||
        d.nrows != 1)
        return;
    if (strcmp(rows_str(&d, 0, 3), "running")) return; /* no console to close */
    char pw[9], err[256];
    json_t *result = NULL;
    if (broker_vnc_password(pw) < 0) return;
    if (broker_agent_call(cfg, rows_int(&d, 0, 6), rows_str(&d, 0, 9), "desktop.console",
                          json_pack("{s:s, s:s, s:b}", "uuid", rows_str(&d, 0, 2), "password", pw,
                                    "disconnect", 1),
                          &result, err, sizeof(err)) < 0)
        LOG_WARN(NULL, "cannot close the console of desktop %lld: %s", desktop_id, err);
    json_decref(result);
}

struct tick {
    bic_req req;
    long long id, kick;
    const char *reason;
};

static bic_err end_tx(bic_db *db, void *arg)
{
    (void)db;
    struct tick *t = arg;
    bool ended;
    return broker_end_session(&t->req, t->id, t->reason, "policy", &t->kick, &ended);
}

struct lost {
    bic_arena *a;
    long grace;
};

/* The pass races connects and log-offs for session rows: a deadlock is retried, not skipped. */
static bic_err lost_tx(bic_db *db, void *arg)
{
    struct lost *l = arg;
    return DB_EXEC(db, l->a, STMT_sessions_lost, NULL, P_INT(l->grace));
}

void broker_tick(bic_db *db, bic_arena *a, const bic_config *cfg)
{
    struct lost l = {a, cfg->broker_client_grace > 0 ? cfg->broker_client_grace : 90};
    db_tx(db, lost_tx, &l);
    DB_EXEC0(db, a, STMT_ticket_prune, NULL);
    bic_rows r;
    if (DB_EXEC0(db, a, STMT_sessions_expired, &r) != BIC_E_OK) return;
    for (size_t i = 0; i < r.nrows; i++) {
        struct tick t = {.id = rows_int(&r, i, 0), .reason = rows_str(&r, i, 1)};
        t.req.db = db;
        t.req.arena = a;
        t.req.cfg = cfg;
        t.req.remote_addr = "";
        t.req.who.username = "system";
        snprintf(t.req.request_id, sizeof(t.req.request_id), "ctl-broker");
        if (db_tx(db, end_tx, &t) != BIC_E_OK) continue;
        LOG_INFO(NULL, "session %lld logged off: %s", t.id, t.reason);
        broker_kick(db, a, cfg, t.kick);
    }
}
