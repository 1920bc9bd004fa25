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

#endif
