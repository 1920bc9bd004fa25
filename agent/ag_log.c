#include "ag_log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = AG_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void ag_log_set_level(enum ag_log_level level)
{
    atomic_store(&min_level, (int)level);
}

int ag_log_level_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
        if (s && !strcasecmp(s, level_names[i])) return i;
    return -1;
}

void ag_time_iso(char *buf, size_t len, long long sec, int ms)
{
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", base, ms);
}

void ag_now_iso(char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ag_time_iso(buf, len, (long long)ts.tv_sec, (int)(ts.tv_nsec / 1000000));
}

__attribute__((format(printf, 3, 0))) static void vlog(enum ag_log_level level, const char *tag,
                                                       const char *fmt, va_list ap)
{
    char msg[1024];
    int t = snprintf(msg, sizeof(msg), "%s", tag);
    if (t < 0 || (size_t)t >= sizeof(msg)) t = 0;
    vsnprintf(msg + t, sizeof(msg) - (size_t)t, fmt, ap);
    char ts[32];
    ag_now_iso(ts, sizeof(ts));
    json_t *m = json_string(msg);
    json_t *o = json_pack("{s:s, s:s, s:o}", "ts", ts, "level", level_names[level], "msg",
                          m ? m : json_string("(message was not valid UTF-8)"));
    if (!o) return;
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) return;
    size_t n = strlen(s);
    s[n] = '\n'; /* json_dumps leaves the NUL; replace it and write n+1 bytes */
    ssize_t w = write(STDERR_FILENO, s, n + 1);
    (void)w;
    free(s);
}

void ag_log(enum ag_log_level level, const char *fmt, ...)
{
    if ((int)level > atomic_load(&min_level)) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, "", fmt, ap);
    va_end(ap);
}

void ag_log_tagged(enum ag_log_level level, const char *tag, const char *fmt, ...)
{
    if ((int)level > atomic_load(&min_level)) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, tag ? tag : "", fmt, ap);
    va_end(ap);
}
