#include "ag_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ag_log.h"
#include "ag_verify.h"

struct ag_listener {
    struct MHD_Daemon *mhd;
    int fd; /* bound, not yet handed to libmicrohttpd; -1 once serving */
    int port;
    size_t nroutes;
    ag_listener_fn fn;
    void *arg;
    atomic_int calls; /* running or being read */
};

/* One request being read. */
struct upload {
    char *data;
    size_t len, cap;
    size_t route;
    ag_listener_kind kind;
    int too_large;
};

/* The kind of a path's tail ("/v1/tasks" or "/v1/call"); -1 for another. */
static int path_kind(const char *tail)
{
    if (!strcmp(tail, AG_LISTENER_PATH)) return AG_LISTENER_TASK;
    if (!strcmp(tail, AG_LISTENER_CALL_PATH)) return AG_LISTENER_CALL;
    return -1;
}

long ag_listener_route(const char *path, size_t nroutes, ag_listener_kind *kind)
{
    int k;
    if (!nroutes) {
        if ((k = path_kind(path)) < 0) return -1;
        if (kind) *kind = (ag_listener_kind)k;
        return 0;
    }
    size_t plen = strlen(AG_LISTENER_ROUTE_PREFIX);
    if (strncmp(path, AG_LISTENER_ROUTE_PREFIX, plen)) return -1;
    const char *p = path + plen;
    if (*p == '0' && p[1] != '/') return -1; /* one index, one spelling */
    long i = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits == 9) return -1;
        i = i * 10 + (*p - '0');
    }
    if (!digits || (k = path_kind(p)) < 0 || (size_t)i >= nroutes) return -1;
    if (kind) *kind = (ag_listener_kind)k;
    return i;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *json, int own)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(json), (void *)json, own ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (own) free((void *)json);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "POST");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A refusal of the listener itself: {"error": name}, or {"ok": false, "error": name} to a call. */
static enum MHD_Result refuse(struct MHD_Connection *c, unsigned status, ag_listener_kind kind,
                              const char *name)
{
    char body[96];
    snprintf(body, sizeof(body), "{%s\"error\":\"%s\"}",
             kind == AG_LISTENER_CALL ? "\"ok\":false," : "", name);
    char *copy = strdup(body);
    return copy ? answer(c, status, copy, 1) : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    ag_listener *l = cls;
    struct upload *u = *con_cls;
    if (!u) {
        /* first call: headers only */
        ag_listener_kind kind = AG_LISTENER_TASK;
        long route = ag_listener_route(url, l->nroutes, &kind);
        if (route < 0) return answer(c, MHD_HTTP_NOT_FOUND, "{\"error\":\"not_found\"}", 0);
        if (strcmp(method, MHD_HTTP_METHOD_POST))
            return refuse(c, MHD_HTTP_METHOD_NOT_ALLOWED, kind, "method_not_allowed");
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > AG_TASK_BODY_MAX)
            return refuse(c, MHD_HTTP_CONTENT_TOO_LARGE, kind, "body_too_large");
        if (kind == AG_LISTENER_CALL && atomic_fetch_add(&l->calls, 1) >= AG_LISTENER_CALLS_MAX) {
            atomic_fetch_sub(&l->calls, 1);
            return refuse(c, MHD_HTTP_SERVICE_UNAVAILABLE, kind, "busy");
        }
        u = calloc(1, sizeof(*u));
        if (!u) {
            if (kind == AG_LISTENER_CALL) atomic_fetch_sub(&l->calls, 1);
            return MHD_NO;
        }
        u->route = (size_t)route;
        u->kind = kind;
        *con_cls = u;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (u->too_large || u->len + n > AG_TASK_BODY_MAX) {
            u->too_large = 1; /* chunked bodies: read on, keep nothing */
            return MHD_YES;
        }
        if (u->len + n > u->cap) {
            size_t cap = u->cap ? u->cap : 4096;
            while (cap < u->len + n)
                cap *= 2;
            char *d = realloc(u->data, cap);
            if (!d) return MHD_NO;
            u->data = d;
            u->cap = cap;
        }
        memcpy(u->data + u->len, upload_data, n);
        u->len += n;
        return MHD_YES;
    }
    if (u->too_large) return refuse(c, MHD_HTTP_CONTENT_TOO_LARGE, u->kind, "body_too_large");
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-BIC-Signature");
    char *body = NULL;
    int status = l->fn(l->arg, u->route, u->kind, u->data ? u->data : "", u->len, sig, &body);
    if (!body) return answer(c, (unsigned)status, "{}", 0);
    return answer(c, (unsigned)status, body, 1);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    ag_listener *l = cls;
    struct upload *u = *con_cls;
    if (!u) return;
    if (u->kind == AG_LISTENER_CALL) atomic_fetch_sub(&l->calls, 1);
    /* a call's body holds a console password */
    if (u->data) explicit_bzero(u->data, u->cap);
    free(u->data);
    free(u);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    AG_WARN("listener: %s", msg);
}

/* A listening socket on host:port; -1 with err. */
static int bind_socket(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(*host ? host : NULL, portstr, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "listen %s:%d: %s", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 64) == 0) break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) snprintf(err, errlen, "listen %s:%d: %s", host, port, strerror(saved));
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

ag_listener *ag_listener_bind(const char *host, int port, char *err, size_t errlen)
{
    ag_listener *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->fd = bind_socket(host, port, err, errlen);
    if (l->fd < 0) {
        free(l);
        return NULL;
    }
    l->port = bound_port(l->fd);
    return l;
}

int ag_listener_serve(ag_listener *l, size_t nroutes, ag_listener_fn fn, void *arg, char *err,
                      size_t errlen)
{
    if (l->mhd || l->fd < 0 || nroutes > AG_LISTENER_ROUTES_MAX) {
        snprintf(err, errlen, "the task listener cannot serve %zu routes", nroutes);
        return -1;
    }
    l->nroutes = nroutes;
    l->fn = fn;
    l->arg = arg;
    /* a thread pool binds connections to a thread when it accepts them: a call waiting on
       libvirt would hold up the tasks accepted with it */
    l->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                  MHD_USE_AUTO | MHD_USE_ERROR_LOG,
                              0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
                              NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l->fd,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)AG_LISTENER_CONNECTIONS,
                              MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)AG_LISTENER_PER_IP,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)AG_LISTENER_TIMEOUT_S,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_END);
    if (!l->mhd) {
        snprintf(err, errlen, "cannot start the task listener on port %d", l->port);
        return -1;
    }
    l->fd = -1; /* libmicrohttpd's now */
    return 0;
}

ag_listener *ag_listener_start(const char *host, int port, ag_listener_fn fn, void *arg, char *err,
                               size_t errlen)
{
    ag_listener *l = ag_listener_bind(host, port, err, errlen);
    if (l && ag_listener_serve(l, 0, fn, arg, err, errlen) < 0) {
        ag_listener_stop(l);
        return NULL;
    }
    return l;
}

int ag_listener_port(const ag_listener *l)
{
    return l->port;
}

void ag_listener_stop(ag_listener *l)
{
    if (!l) return;
    if (l->mhd) MHD_stop_daemon(l->mhd);
    if (l->fd >= 0) close(l->fd);
    free(l);
}
