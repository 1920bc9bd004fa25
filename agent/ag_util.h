/*
 * ag_util.h - small helpers shared by the agent's modules: ownership (cleanup
 * attributes and a steal helper), base64, files in the state directory, clocks.
 */
#ifndef BIC_AG_UTIL_H
#define BIC_AG_UTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/types.h>

/*
 * Ownership: a variable declared AG_AUTOFREE (malloc'd memory) or AG_AUTOJSON
 * (a jansson reference) is released when it goes out of scope; AG_STEAL(v) hands
 * the value over and leaves NULL behind, so the cleanup does nothing.
 */
static inline void ag_freep(void *p)
{
    free(*(void **)p);
}
static inline void ag_json_decrefp(json_t **p)
{
    json_decref(*p);
}
static inline void *ag_steal_ptr(void *pp)
{
    void **p = pp;
    void *v = *p;
    *p = NULL;
    return v;
}
#define AG_AUTOFREE __attribute__((cleanup(ag_freep)))
#define AG_AUTOJSON __attribute__((cleanup(ag_json_decrefp)))
#define AG_STEAL(v) ag_steal_ptr(&(v))
#define AG_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Standard base64 with padding. Returns a new NUL-terminated string or NULL. */
char *ag_b64_encode(const unsigned char *in, size_t len);
/*
 * Strict standard base64 (padding required, no whitespace). Writes at most cap
 * bytes; returns the decoded length, or -1 on a bad character, bad padding or
 * an output longer than cap.
 */
ssize_t ag_b64_decode(const char *in, unsigned char *out, size_t cap);

/*
 * Reads a whole file of at most max bytes into a new NUL-terminated buffer.
 * Returns NULL with errno set (EFBIG when larger than max).
 */
char *ag_file_read(const char *path, size_t max, size_t *len);
/*
 * Writes data to path atomically (path.tmp, fsync, rename, fsync of the
 * directory) with mode 0600. Returns 0 or -1 with errno set.
 */
int ag_file_write_atomic(const char *path, const char *data, size_t len);
/* Writes a JSON object with ag_file_write_atomic. Returns 0 or -1. */
int ag_json_write_atomic(const char *path, const json_t *obj);
/* mkdir -p with mode for the directories it creates. Returns 0 or -1 with errno set. */
int ag_mkdir_p(const char *path, mode_t mode);

/* Monotonic clock in milliseconds. */
long long ag_mono_ms(void);

/* Exponential back-off: 0 → 1 s, then doubling, never above cap_s. */
unsigned ag_backoff_next(unsigned prev_s, unsigned cap_s);

/* Overwrites the text of a JSON string in place (jansson frees without wiping). */
void ag_json_wipe_string(json_t *s);

/* Copies src into dst (size len) and returns 0, or -1 when it does not fit. */
int ag_strlcpy(char *dst, const char *src, size_t len);

/*
 * Fills buf with n uniformly random characters of [A-Za-z0-9] from the kernel's
 * generator and a NUL (buf holds n + 1). Returns 0, or -1 with errno set.
 */
int ag_random_alnum(char *buf, size_t n);

#endif
