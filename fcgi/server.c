#include "server.h"

#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "controller.h"
#include "log.h"
#include "metrics.h"

static volatile sig_atomic_t stopping;
static volatile sig_atomic_t reopen_logs;

/*
 * Two listeners: the portals' and API clients' socket, and the agents' socket with its own
 * workers, so heartbeats and task results never queue behind user requests (issue 12:
 * heartbeats never lose to load). The agents' listener serves the agent routes only.
 */
enum { LISTEN_USER, LISTEN_AGENT, LISTEN_N };
static int listen_fds[LISTEN_N] = {-1, -1};

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
    for (int i = 0; i < LISTEN_N; i++)
        if (listen_fds[i] >= 0) shutdown(listen_fds[i], SHUT_RDWR); /* wakes every accept() */
}

static void on_hup(int sig)
{
    (void)sig;
    reopen_logs = 1;
}

static void new_request_id(char *buf, size_t len)
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        for (size_t i = 0; i < sizeof(raw); i++)
            raw[i] = (unsigned char)rand();
    for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < len; i++)
        snprintf(buf + 2 * i, 3, "%02x", raw[i]);
}

/* Accepts nginx's $request_id when it looks like one; otherwise makes our own. */
static void set_request_id(bic_req *req, const char *given)
{
    size_t n = given ? strlen(given) : 0;
    bool ok = n >= 8 && n < sizeof(req->request_id);
    for (size_t i = 0; ok && i < n; i++)
        ok = (given[i] >= '0' && given[i] <= '9') || (given[i] >= 'a' && given[i] <= 'z') ||
             (given[i] >= 'A' && given[i] <= 'Z') || given[i] == '-';
    if (ok)
        memcpy(req->request_id, given, n + 1);
    else
        new_request_id(req->request_id, sizeof(req->request_id));
}

static bic_err read_body(bic_req *req)
{
    FCGX_Request *f = req->fcgx;
    size_t want = (size_t)req->content_length;
    char *buf = arena_alloc(req->arena, want + 1);
    size_t got = 0;
    while (got < want) {
        int n = FCGX_GetStr(buf + got, (int)(want - got), f->in);
        if (n <= 0) break;
        got += (size_t)n;
    }
    if (got != want)
        return fail(req, BIC_E_BAD_REQUEST, "the body ended after %zu of %zu bytes", got, want);
    buf[got] = '\0';
    req->body = buf;
    req->body_len = got;
    return BIC_E_OK;
}

static long long parse_length(const char *s)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0) return -2;
    return v;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

struct worker {
    pthread_t thread;
    const bic_config *cfg;
    int index;
    int listener; /* LISTEN_USER or LISTEN_AGENT */
};

static void serve_one(FCGX_Request *f, const bic_config *cfg, bic_db *db, bic_arena *arena,
                      bool agent_only)
{
    bic_req req = {0};
    req.agent_only = agent_only;
    bic_resp resp = {0};
    clock_gettime(CLOCK_MONOTONIC, &req.started);
    req.fcgx = f;
    req.arena = arena;
    req.db = db;
    req.cfg = cfg;
    char **env = f->envp;
    req.method_str = FCGX_GetParam("REQUEST_METHOD", env);
    req.path = FCGX_GetParam("DOCUMENT_URI", env);
    if (!req.path) {
        const char *uri = FCGX_GetParam("REQUEST_URI", env);
        const char *q = uri ? strchr(uri, '?') : NULL;
        req.path = uri && q ? arena_strndup(arena, uri, (size_t)(q - uri)) : uri;
    }
    req.query = FCGX_GetParam("QUERY_STRING", env);
    req.remote_addr = FCGX_GetParam("REMOTE_ADDR", env);
    req.origin = FCGX_GetParam("HTTP_ORIGIN", env);
    req.host = FCGX_GetParam("BIC_HOST", env);
    req.cookie = FCGX_GetParam("HTTP_COOKIE", env);
    req.csrf_header = FCGX_GetParam("HTTP_X_CSRF_TOKEN", env);
    req.authorization = FCGX_GetParam("HTTP_AUTHORIZATION", env);
    req.content_type = FCGX_GetParam("CONTENT_TYPE", env);
    req.user_agent = FCGX_GetParam("HTTP_USER_AGENT", env);
    req.content_length = parse_length(FCGX_GetParam("CONTENT_LENGTH", env));
    req.content_sha256 = FCGX_GetParam("HTTP_X_BIC_SHA256", env);
    /* set by nginx's upload locations only (a client header arrives as HTTP_*) */
    req.upload_file = nonempty(FCGX_GetParam("BIC_UPLOAD_FILE", env));
    if (nonempty(FCGX_GetParam("BIC_UPLOAD_CHECK", env))) {
        req.upload_check = true;
        req.upload_file = NULL;
        /* the upload's path and query, not the check subrequest's */
        req.path = FCGX_GetParam("BIC_UPLOAD_URI", env);
        req.query = FCGX_GetParam("BIC_UPLOAD_QUERY", env);
    }
    req.console_ticket = nonempty(FCGX_GetParam("BIC_CONSOLE_TICKET", env));
    set_request_id(&req, FCGX_GetParam("REQUEST_ID", env));
    db_set_request(db, req.request_id);

    bic_err e;
    if (req.content_length == -2) {
        e = fail(&req, BIC_E_BAD_REQUEST, "Content-Length is not a number");
        resp_error(&req, &resp, e);
    } else {
        e = dispatch(&req, &resp);
    }
    http_write(&req, &resp);

    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ms = (double)(end.tv_sec - req.started.tv_sec) * 1e3 +
                (double)(end.tv_nsec - req.started.tv_nsec) / 1e6;
    json_t *line =
        json_pack("{s:s, s:s?, s:s?, s:i, s:f, s:s?, s:I}", "request_id", req.request_id, "method",
                  req.method_str, "path", req.path, "status", resp.status, "ms", ms, "remote",
                  req.remote_addr, "user", (json_int_t)req.who.user_id);
    if (line && agent_only) json_object_set_new(line, "listener", json_string("agent"));
    if (line && e != BIC_E_OK) json_object_set_new(line, "error", json_string(bic_err_name(e)));
    if (line) log_access(line);
    metrics_observe(resp.status, ms / 1e3);
    db_set_request(db, NULL);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    bic_db *db = db_new(w->cfg, w->cfg->database_user, w->cfg->database_password);
    bic_arena *arena = arena_new(16384);
    FCGX_Request f;
    if (!db || !arena ||
        FCGX_InitRequest(&f, listen_fds[w->listener], FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        LOG_ERROR(NULL, "worker %d: out of memory", w->index);
        db_free(db);
        arena_free(arena);
        return NULL;
    }
    db_ensure(db); /* connect early; failure is retried per request */
    while (!stopping) {
        if (FCGX_Accept_r(&f) < 0) {
            if (stopping) break;
            if (errno != EINTR) {
                struct timespec ts = {0, 10 * 1000000L};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        if (reopen_logs && w->index == 0) {
            reopen_logs = 0;
            log_reopen();
        }
        serve_one(&f, w->cfg, db, arena, w->listener == LISTEN_AGENT);
        FCGX_Finish_r(&f);
        arena_reset(arena);
    }
    FCGX_Free(&f, 1);
    db_free(db);
    arena_free(arena);
    return NULL;
}

static int open_listener(const char *path, const bic_config *cfg)
{
    unlink(path); /* a stale socket from a crash would make bind fail */
    int fd = FCGX_OpenSocket(path, (int)cfg->server_backlog);
    if (fd < 0) {
        LOG_ERROR(NULL, "cannot listen on %s: %s", path, strerror(errno));
        return -1;
    }
    if (chmod(path, (mode_t)cfg->server_socket_mode) < 0)
        LOG_WARN(NULL, "chmod %s: %s", path, strerror(errno));
    return fd;
}

static int clamp_threads(long long n, int lo)
{
    if (n < lo) return lo;
    return n > 256 ? 256 : (int)n;
}

int server_run(const bic_config *cfg)
{
    if (FCGX_Init() != 0) {
        LOG_ERROR(NULL, "FCGX_Init failed");
        return 1;
    }
    const char *paths[LISTEN_N] = {cfg->server_socket, cfg->server_agent_socket};
    bool agents_apart = paths[LISTEN_AGENT] && *paths[LISTEN_AGENT];
    if (agents_apart && !strcmp(paths[LISTEN_AGENT], paths[LISTEN_USER])) {
        LOG_ERROR(NULL, "[server] agent_socket must differ from socket (%s)", paths[LISTEN_USER]);
        return 1;
    }
    for (int l = 0; l < (agents_apart ? LISTEN_N : 1); l++) {
        listen_fds[l] = open_listener(paths[l], cfg);
        if (listen_fds[l] < 0) {
            if (l) close(listen_fds[0]), unlink(paths[0]);
            return 1;
        }
    }

    /* libfcgi installs its own SIGTERM handling in FCGX_Init: replace it. */
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    dispatch_read_body = read_body;
    int nuser = clamp_threads(cfg->server_threads, 1);
    int nagent = agents_apart ? clamp_threads(cfg->server_agent_threads, 1) : 0;
    int n = nuser + nagent;
    struct worker *workers = calloc((size_t)n, sizeof(*workers));
    if (!workers) return 1;
    for (int i = 0; i < n; i++) {
        workers[i].cfg = cfg;
        workers[i].index = i;
        workers[i].listener = i < nuser ? LISTEN_USER : LISTEN_AGENT;
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            LOG_ERROR(NULL, "cannot start worker %d", i);
            on_stop(0);
            n = i;
            break;
        }
    }
    if (agents_apart)
        LOG_INFO(NULL, "bicd listening on %s with %d workers, agents on %s with %d workers",
                 paths[LISTEN_USER], nuser, paths[LISTEN_AGENT], nagent);
    else
        LOG_INFO(NULL, "bicd listening on %s with %d workers (agents too)", paths[LISTEN_USER],
                 nuser);
    controller_start(cfg, &stopping);
    for (int i = 0; i < n; i++)
        pthread_join(workers[i].thread, NULL);
    controller_stop();
    free(workers);
    for (int l = 0; l < LISTEN_N; l++)
        if (listen_fds[l] >= 0) {
            close(listen_fds[l]);
            unlink(paths[l]);
        }
    LOG_INFO(NULL, "bicd stopped");
    return 0;
}
