/*
 * ag_http.h - the agent's requests to CCC (libcurl): JSON over HTTPS, CCC's
 * certificate checked against the configured CA file.
 *
 * One ag_http per thread (a curl handle is not shared); it keeps the
 * connection open between requests. curl_global_init must have run.
 */
#ifndef BIC_AG_HTTP_H
#define BIC_AG_HTTP_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#define AG_HTTP_ANSWER_MAX (256 * 1024)

typedef struct ag_http ag_http;

/*
 * base_url like https://ccc:443 (no trailing slash); ca_file "" = the system CAs.
 * abort, when not NULL, is watched during transfers: once it is non-zero the
 * request in progress ends at once with an error (a stopping daemon).
 */
ag_http *ag_http_new(const char *base_url, const char *ca_file, const atomic_int *abort);
void ag_http_free(ag_http *h);

/*
 * POSTs body (borrowed) as JSON to base_url + path. bearer, when not NULL, is
 * sent as "Authorization: Bearer <bearer>" and never logged. Returns the HTTP
 * status and sets *answer to the parsed JSON answer (NULL when empty or not
 * JSON; answer may be NULL), or -1 with the transport error in err.
 */
int ag_http_post(ag_http *h, const char *path, const char *bearer, const json_t *body,
                 json_t **answer, char *err, size_t errlen);

/*
 * Receives the body of a GET as it arrives: 0 to go on, -1 to end the transfer
 * (the request then fails with the sink's own reason, which it keeps itself).
 */
typedef int (*ag_http_sink)(void *arg, const void *data, size_t len);

/*
 * GETs base_url + path with the bearer (as ag_http_post), for bodies of any
 * size: a 200 body goes to sink piece by piece; another status's body is read
 * (at most AG_HTTP_ANSWER_MAX bytes) and its JSON "error" put into err. No
 * overall time limit: a transfer ends when no byte came for
 * AG_HTTP_STALL_S seconds or abort is set. Returns the HTTP status, or -1 with
 * err (transport error, or the sink ended it: err is then "GET <path>: aborted").
 */
int ag_http_get_stream(ag_http *h, const char *path, const char *bearer, ag_http_sink sink,
                       void *arg, char *err, size_t errlen);

/*
 * PUTs len bytes read from fd (from its current offset) to base_url + path
 * with the bearer, "Content-Type: application/octet-stream" and each line of
 * headers (NULL-terminated; may be NULL), with the same limits as the GET.
 * Returns the HTTP status, with the JSON "error" of a non-2xx answer in err,
 * or -1 with err.
 */
int ag_http_put_fd(ag_http *h, const char *path, const char *bearer, int fd, long long len,
                   const char *const *headers, char *err, size_t errlen);

#define AG_HTTP_STALL_S 60

#endif
