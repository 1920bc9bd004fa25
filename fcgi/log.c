#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int access_fd = STDERR_FILENO, error_fd = STDERR_FILENO;
static char *access_path_saved, *error_path_saved;
static pthread_mutex_t reopen_lock = PTHREAD_MUTEX_INITIALIZER;

static int open_log(const char *path)
{
    if (!path || !*path) return STDERR_FILENO;
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

static void close_log(int fd)
{
    if (fd > STDERR_FILENO) close(fd);
}

int log_open(const char *access_path, const char *error_path)
{
    int a = open_log(access_path);
    if (a < 0) return -1;
    int e = open_log(error_path);
    if (e < 0) {
        int saved = errno;
        close_log(a);
        errno = saved;
        return -1;
    }
    pthread_mutex_lock(&reopen_lock);
    close_log(access_fd);
    close_log(error_fd);
    access_fd = a;
    error_fd = e;
    if (access_path != access_path_saved) {
        free(access_path_saved);
        access_path_saved = access_path ? strdup(access_path) : NULL;
    }
    if (error_path != error_path_saved) {
        free(error_path_saved);
        error_path_saved = error_path ? strdup(error_path) : NULL;
    }
    pthread_mutex_unlock(&reopen_lock);
    return 0;
}

int log_reopen(void)
{
    return log_open(access_path_saved, error_path_saved);
}

void log_close(void)
{
    close_log(access_fd);
    close_log(error_fd);
    access_fd = error_fd = STDERR_FILENO;
    free(access_path_saved);
    free(error_path_saved);
    access_path_saved = error_path_saved = NULL;
}

void log_timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03ldZ", base, ts.tv_nsec / 1000000);
}

static void write_line(int fd, json_t *obj)
{
    char ts[32];
    log_timestamp(ts, sizeof(ts));
    json_object_set_new(obj, "ts", json_string(ts));
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(obj);
    if (!s) return;
    size_t n = strlen(s);
    s[n] = '\n'; /* json_dumps leaves the NUL; replace it and write n+1 bytes */
    ssize_t w = write(fd, s, n + 1);
    (void)w;
    free(s);
}

void log_msg(enum bic_log_level level, const char *request_id, const char *file, int line,
             const char *func, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info"};
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    json_object_set_new(o, "level", json_string(names[level]));
    if (request_id && *request_id) json_object_set_new(o, "request_id", json_string(request_id));
    json_object_set_new(o, "where", json_sprintf("%s:%d %s", file, line, func));
    json_t *m = json_string(msg);
    json_object_set_new(o, "msg", m ? m : json_string("(message was not valid UTF-8)"));
    write_line(error_fd, o);
}

void log_access(json_t *fields)
{
    write_line(access_fd, fields);
}
