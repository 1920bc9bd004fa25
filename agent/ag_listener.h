/*
 * ag_listener.h - the task listener (libmicrohttpd, a thread per connection).
 *
 * It answers only POST to a task or call path: bodies over AG_TASK_BODY_MAX
 * are refused with 413 before they are read whole, other paths get 404, other
 * methods 405. The route, the kind (task or call), the body and the
 * X-BIC-Signature header go to the handler, which decides.
 *
 * A task is queued and answered at once; a call is run before it is answered
 * and may wait on libvirt. Each connection has its own thread, so handlers
 * run at the same time and a waiting call holds up nothing else. At most
 * AG_LISTENER_CALLS_MAX calls run at once (others get 503 busy), so that
 * calls never take every connection from tasks.
 *
 * One agent listens on AG_LISTENER_PATH and AG_LISTENER_CALL_PATH (route 0).
 * A fleet of n agents shares one listener: agent i gives CCC the listen_url
 * <base>/s/<i>, so its tasks arrive on /s/<i>/v1/tasks and its calls on
 * /s/<i>/v1/call (route i).
 */
#ifndef BIC_AG_LISTENER_H
#define BIC_AG_LISTENER_H

#include <stddef.h>

#define AG_LISTENER_PATH        "/v1/tasks"
#define AG_LISTENER_CALL_PATH   "/v1/call"
#define AG_LISTENER_CALLS_MAX   16  /* at once, in all */
#define AG_LISTENER_CONNECTIONS 128 /* at once, in all */
#define AG_LISTENER_PER_IP      64  /* CCC pushes up to 64 tasks at once */
#define AG_LISTENER_TIMEOUT_S   10

#define AG_LISTENER_ROUTE_PREFIX "/s/"
#define AG_LISTENER_ROUTES_MAX   1000000

/* What a request path asks for. */
typedef enum ag_listener_kind {
    AG_LISTENER_TASK, /* .../v1/tasks: queue a task */
    AG_LISTENER_CALL  /* .../v1/call: run a call and answer with its result */
} ag_listener_kind;

/*
 * Decides a request of kind for route (0 .. nroutes-1; 0 with one agent).
 * body is body_len bytes (not NUL-terminated); sig is the X-BIC-Signature
 * header or NULL. Returns the HTTP status and sets *answer to a malloc'd JSON
 * text (or NULL for none). Runs on one of the listener's threads, possibly
 * at the same time as other requests.
 */
typedef int (*ag_listener_fn)(void *arg, size_t route, ag_listener_kind kind, const char *body,
                              size_t body_len, const char *sig, char **answer);

typedef struct ag_listener ag_listener;

/*
 * Binds host:port (host "" = every address; port 0 = a free port) without
 * serving yet, so that the caller knows the port before it builds what serves.
 * Returns NULL with err when the address cannot be bound.
 */
ag_listener *ag_listener_bind(const char *host, int port, char *err, size_t errlen);

/*
 * Starts serving a bound listener. nroutes 0: one agent on AG_LISTENER_PATH
 * and AG_LISTENER_CALL_PATH; otherwise routes /s/0/v1/... .. /s/<nroutes-1>/v1/...
 * Returns 0, or -1 with err.
 */
int ag_listener_serve(ag_listener *l, size_t nroutes, ag_listener_fn fn, void *arg, char *err,
                      size_t errlen);

/* ag_listener_bind then ag_listener_serve with nroutes 0. NULL with err. */
ag_listener *ag_listener_start(const char *host, int port, ag_listener_fn fn, void *arg, char *err,
                               size_t errlen);

/*
 * The route of a request path: with nroutes 0 only AG_LISTENER_PATH and
 * AG_LISTENER_CALL_PATH, as 0; otherwise only /s/<i>/v1/tasks and
 * /s/<i>/v1/call with i written in canonical decimal (no sign, no leading
 * zero) and below nroutes. -1 for any other path. Sets *kind (when not NULL)
 * for a routed path.
 */
long ag_listener_route(const char *path, size_t nroutes, ag_listener_kind *kind);

/* The bound port. */
int ag_listener_port(const ag_listener *l);
/* Stops serving (waits for the running handler) and frees l (bound or serving). NULL is fine. */
void ag_listener_stop(ag_listener *l);

#endif
