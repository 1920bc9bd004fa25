/*
 * ag_listener.h - the task listener (libmicrohttpd, its own polling thread).
 *
 * It answers only POST /v1/tasks: bodies over AG_TASK_BODY_MAX are refused with
 * 413 before they are read whole, other paths get 404, other methods 405. The
 * body and the X-BIC-Signature header go to the handler, which decides.
 */
#ifndef BIC_AG_LISTENER_H
#define BIC_AG_LISTENER_H

#include <stddef.h>

#define AG_LISTENER_PATH        "/v1/tasks"
#define AG_LISTENER_CONNECTIONS 128 /* at once, in all */
#define AG_LISTENER_PER_IP      64  /* CCC pushes up to 64 tasks at once */
#define AG_LISTENER_TIMEOUT_S   10

/*
 * Decides a task request. body is body_len bytes (not NUL-terminated); sig is
 * the X-BIC-Signature header or NULL. Returns the HTTP status and sets *answer
 * to a malloc'd JSON text (or NULL for none).
 */
typedef int (*ag_listener_fn)(void *arg, const char *body, size_t body_len, const char *sig,
                              char **answer);

typedef struct ag_listener ag_listener;

/*
 * Binds host:port (host "" = every address; port 0 = a free port) and starts
 * serving. Returns NULL with err when the address cannot be bound.
 */
ag_listener *ag_listener_start(const char *host, int port, ag_listener_fn fn, void *arg, char *err,
                               size_t errlen);
/* The bound port. */
int ag_listener_port(const ag_listener *l);
/* Stops serving (waits for the running handler) and frees l. NULL is fine. */
void ag_listener_stop(ag_listener *l);

#endif
