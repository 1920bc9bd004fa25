/*
 * util.h - small helpers shared by handlers: ids from paths, paging, times.
 */
#ifndef BIC_UTIL_H
#define BIC_UTIL_H

#include "http.h"

/* Parses path parameter i as a positive id; BIC_E_NOT_FOUND when it is not one. */
bic_err param_id(bic_req *req, size_t i, long long *out);

/*
 * Reads an optional non-negative integer query parameter; def when absent,
 * BIC_E_VALIDATION (reported) when malformed or above max.
 */
bic_err query_int(bic_req *req, const char *name, long long def, long long max, long long *out);

/*
 * Reads an optional id filter from the query: *out is NULL when absent or empty, else the
 * text of a positive integer; BIC_E_VALIDATION (reported, "<name> must be an id") otherwise.
 */
bic_err query_id(bic_req *req, const char *name, const char **out);

/*
 * Keyset paging: reads "limit" (absent or 0: def; at most max) and the cursor
 * parameter named cursor (absent: cursor_def). BIC_E_VALIDATION when malformed.
 */
bic_err query_page(bic_req *req, long long def, long long max, const char *cursor,
                   long long cursor_def, long long *limit, long long *cursor_val);

/* The next cursor: the id in column 0 of the last row when the page is full, else null. */
json_t *page_next(const bic_rows *rows, long long limit);

/* Turns row i of a result into its API object. New reference. */
typedef json_t *(*row_json_fn)(bic_req *req, const bic_rows *rows, size_t i);

/*
 * Answers 200 {"items": [fn(row)...], "<next_key>": page_next(rows, limit)}: the shape of
 * every keyset-paged list.
 */
void resp_page(bic_req *req, bic_resp *resp, const bic_rows *rows, row_json_fn fn, long long limit,
               const char *next_key);

/* "2026-01-02 03:04:05.678" (UTC from MariaDB) -> "2026-01-02T03:04:05.678Z"; NULL stays NULL. */
json_t *json_time(bic_req *req, const char *sql_time);

/* Escapes LIKE wildcards in s and appends '%' (prefix match), in the arena; NULL stays NULL. */
const char *like_prefix(bic_req *req, const char *s);

/* "1"/"true" -> 1, "0"/"false" -> 0; -1 otherwise. */
int parse_bool(const char *s);

#endif
