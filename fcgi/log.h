/*
 * log.h - JSON-lines logs: one object per line, written with a single write(2)
 * to an O_APPEND descriptor so lines from worker threads never interleave.
 *
 * The error log records where a failure happened (file, line, function) and the
 * request id; the access log records one line per answered request. Never pass
 * secrets (passwords, tokens, tickets) to either.
 */
#ifndef BIC_LOG_H
#define BIC_LOG_H

#include <jansson.h>

enum bic_log_level { BIC_LOG_ERROR, BIC_LOG_WARN, BIC_LOG_INFO };

/* Opens the logs; an empty or NULL path means stderr. Returns 0 or -1 (errno set). */
int log_open(const char *access_path, const char *error_path);
/* Reopens both files (after rotation, on SIGHUP). */
int log_reopen(void);
void log_close(void);

void log_msg(enum bic_log_level level, const char *request_id, const char *file, int line,
             const char *func, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Writes fields (stolen) as one access-log line, adding "ts". */
void log_access(json_t *fields);

#define LOG_ERROR(rid, ...) log_msg(BIC_LOG_ERROR, (rid), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define LOG_WARN(rid, ...)  log_msg(BIC_LOG_WARN, (rid), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define LOG_INFO(rid, ...)  log_msg(BIC_LOG_INFO, (rid), __FILE__, __LINE__, __func__, __VA_ARGS__)

/* Formats the current UTC time as 2026-01-02T03:04:05.678Z into buf (>= 25 bytes). */
void log_timestamp(char *buf, size_t len);

#endif
