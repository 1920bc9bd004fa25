/*
 * ag_log.h - the agent's JSON-lines log on stderr: {"ts","level","msg"} per line.
 *
 * Each line is written with one write(2), so lines from the agent's threads never
 * interleave. Never pass the credential, the enrollment token or key material.
 */
#ifndef BIC_AG_LOG_H
#define BIC_AG_LOG_H

#include <stddef.h>

enum ag_log_level { AG_LOG_ERROR, AG_LOG_WARN, AG_LOG_INFO, AG_LOG_DEBUG };

/* Lines above level are dropped (default AG_LOG_INFO; BIC_AGENT_LOG=debug|info|warn|error). */
void ag_log_set_level(enum ag_log_level level);
/* Parses "error", "warn", "info", "debug"; returns -1 for anything else. */
int ag_log_level_parse(const char *s);

void ag_log(enum ag_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ag_log with tag (e.g. "bs-7: ", "" for none) put before the message. */
void ag_log_tagged(enum ag_log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define AG_ERROR(...) ag_log(AG_LOG_ERROR, __VA_ARGS__)
#define AG_WARN(...)  ag_log(AG_LOG_WARN, __VA_ARGS__)
#define AG_INFO(...)  ag_log(AG_LOG_INFO, __VA_ARGS__)
#define AG_DEBUG(...) ag_log(AG_LOG_DEBUG, __VA_ARGS__)

/* Formats time t (seconds) plus ms as 2026-11-24T08:00:00.123Z into buf (>= 25 bytes). */
void ag_time_iso(char *buf, size_t len, long long sec, int ms);
/* The current UTC time in that format. */
void ag_now_iso(char *buf, size_t len);

#endif
