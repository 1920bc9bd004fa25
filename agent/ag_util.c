#include "ag_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ag_b64_encode(const unsigned char *in, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len) v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = b64_chars[(v >> 18) & 63];
        out[o++] = b64_chars[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_chars[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64_chars, c) : NULL;
    return p ? (int)(p - b64_chars) : -1;
}

ssize_t ag_b64_decode(const char *in, unsigned char *out, size_t cap)
{
    size_t n = strlen(in);
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=') {
                /* padding only in the last group, only in its last two places */
                if (i + 4 != n || k < 2) return -1;
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad) return -1; /* a character after '=' */
            v[k] = b64_value(in[i + k]);
            if (v[k] < 0) return -1;
        }
        unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | v[3];
        unsigned char bytes[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8),
                                  (unsigned char)w};
        /* unused bits of the last character must be zero (canonical encoding) */
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff))) return -1;
        for (int k = 0; k < 3 - pad; k++) {
            if (o == cap) return -1;
            out[o++] = bytes[k];
        }
    }
    return (ssize_t)o;
}

char *ag_file_read(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) goto fail;
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                errno = EFBIG;
                goto fail;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) goto fail;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            goto fail;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (n > max) {
        errno = EFBIG;
        goto fail;
    }
    close(fd);
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
fail:;
    int saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return NULL;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    if (ag_strlcpy(dir, path, sizeof(dir)) < 0) return -1;
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int ag_file_write_atomic(const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            goto fail;
        }
        off += (size_t)w;
    }
    /* the file may have existed with a wider mode */
    if (fchmod(fd, 0600) < 0 || fsync(fd) < 0) goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) goto fail;
    return fsync_dir_of(path);
fail:;
    int saved = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

int ag_json_write_atomic(const char *path, const json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s) {
        errno = ENOMEM;
        return -1;
    }
    size_t n = strlen(s);
    int rc = ag_file_write_atomic(path, s, n);
    int saved = errno;
    /* the state file holds the credential: do not leave it in freed memory */
    explicit_bzero(s, n);
    free(s);
    errno = saved;
    return rc;
}

int ag_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (ag_strlcpy(buf, path, sizeof(buf)) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(buf, &st) < 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

long long ag_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

unsigned ag_backoff_next(unsigned prev_s, unsigned cap_s)
{
    unsigned next = prev_s ? prev_s * 2 : 1;
    return next > cap_s ? cap_s : next;
}

int ag_strlcpy(char *dst, const char *src, size_t len)
{
    size_t n = strlen(src);
    if (n >= len) {
        if (len) dst[0] = '\0';
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

void ag_json_wipe_string(json_t *s)
{
    if (json_is_string(s)) explicit_bzero((char *)json_string_value(s), json_string_length(s));
}

int ag_random_alnum(char *buf, size_t n)
{
    static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t got = 0;
    while (got < n) {
        unsigned char r[64];
        ssize_t k = getrandom(r, sizeof(r), 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        /* 248 = 4 * 62: bytes above it are dropped so that every character is equally likely */
        for (ssize_t i = 0; i < k && got < n; i++)
            if (r[i] < 248) buf[got++] = set[r[i] % 62];
        explicit_bzero(r, sizeof(r));
    }
    buf[n] = '\0';
    return 0;
}
