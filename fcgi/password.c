#include "password.h"

#include <argon2.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/*
 * Work memory. Each hash needs m_kib KiB (19 MiB at the default cost). Taking it from malloc
 * for every hash means mapping, faulting in and zeroing 19 MiB, and unmapping it again (bicd
 * maps buffers above 1 MiB, main.c), about a third of the hash's time on this kind of machine
 * (docs/performance.md). So every hashing slot keeps one buffer for good: at most `max` of
 * them, made on first use, reused by the next hash. argon2 overwrites its memory before it
 * reads it, so a reused buffer changes nothing in the result. A hash that needs more (a stored
 * hash made with a higher cost) gets its own memory from malloc as before.
 */
#define MAX_BUFS 64

static struct {
    uint32_t m_kib, t, p;
    int max;
    sem_t slots;
    char dummy[PASSWORD_HASH_LEN];
    pthread_once_t once;
    pthread_mutex_t lock;              /* guards the free buffers */
    unsigned char *free_buf[MAX_BUFS]; /* buffers no hash uses now */
    int nfree, nmade;
    size_t buf_len; /* bytes of each buffer: m_kib KiB */
} pw = {
    .m_kib = 19456, .t = 2, .p = 1, .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER};

/* the buffer the running hash on this thread may use (argon2's callbacks take no argument) */
static _Thread_local unsigned char *my_buf;

static void init_slots(void)
{
    sem_init(&pw.slots, 0, (unsigned)pw.max);
}

void password_init(const bic_config *cfg)
{
    pw.m_kib = cfg->auth_argon2_memory_kib < 19456 ? 19456 : (uint32_t)cfg->auth_argon2_memory_kib;
    pw.t = cfg->auth_argon2_time < 2 ? 2 : (uint32_t)cfg->auth_argon2_time;
    pw.p = cfg->auth_argon2_lanes < 1 ? 1 : (uint32_t)cfg->auth_argon2_lanes;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    pw.max = cfg->auth_max_concurrent_hashes > 0 ? (int)cfg->auth_max_concurrent_hashes
                                                 : (cores > 0 ? (int)cores : 1);
    pthread_once(&pw.once, init_slots);
    pw.dummy[0] = '\0';
}

int password_max_concurrent(void)
{
    return pw.max;
}

/* The PHC string format argon2 uses: $argon2id$v=19$m=M,t=T,p=P$<salt>$<hash>, both in
 * standard base64 without padding. */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_put(char *out, const unsigned char *in, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        size_t k = n - i >= 3 ? 4 : n - i + 1;
        for (size_t j = 0; j < k; j++)
            out[o++] = b64[(v >> (18 - 6 * j)) & 63];
    }
    return o;
}

/* decodes exactly len characters; -1 on a character outside the alphabet, a length no
 * encoding has, non-zero padding bits, or more than cap bytes */
static int b64_get(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
    if (len % 4 == 1) return -1;
    size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0), o = 0;
    if (n > cap) return -1;
    uint32_t v = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        const char *c = in[i] ? strchr(b64, in[i]) : NULL;
        if (!c) return -1;
        v = v << 6 | (uint32_t)(c - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(v >> bits);
            v &= (1u << bits) - 1;
        }
    }
    if (v) return -1;
    *outlen = o;
    return 0;
}

int password_encode(uint32_t m_kib, uint32_t t, uint32_t p, const unsigned char *salt,
                    size_t salt_len, const unsigned char *hash, size_t hash_len, char *out,
                    size_t cap)
{
    char s64[PASSWORD_SALT_MAX / 3 * 4 + 4], h64[PASSWORD_OUT_MAX / 3 * 4 + 4];
    if (salt_len > PASSWORD_SALT_MAX || hash_len > PASSWORD_OUT_MAX) return -1;
    s64[b64_put(s64, salt, salt_len)] = '\0';
    h64[b64_put(h64, hash, hash_len)] = '\0';
    int n = snprintf(out, cap, "$argon2id$v=%d$m=%u,t=%u,p=%u$%s$%s", ARGON2_VERSION_13, m_kib, t,
                     p, s64, h64);
    return n > 0 && (size_t)n < cap ? n : -1;
}

int password_decode(const char *enc, struct password_params *h)
{
    unsigned v, m, t, p;
    int at = -1;
    memset(h, 0, sizeof(*h));
    if (strlen(enc) >= PASSWORD_HASH_LEN ||
        sscanf(enc, "$argon2id$v=%u$m=%u,t=%u,p=%u$%n", &v, &m, &t, &p, &at) != 4 || at < 0)
        return -1;
    /* what argon2 itself accepts, and bounds on the work a stored hash may ask for */
    if (v != ARGON2_VERSION_13 || m < 8 * p || m > PASSWORD_M_KIB_MAX || t < 1 ||
        t > PASSWORD_T_MAX || p < 1 || p > PASSWORD_P_MAX)
        return -1;
    const char *salt = enc + at, *sep = strchr(salt, '$');
    if (!sep || strchr(sep + 1, '$')) return -1;
    if (b64_get(salt, (size_t)(sep - salt), h->salt, sizeof(h->salt), &h->salt_len) < 0 ||
        b64_get(sep + 1, strlen(sep + 1), h->hash, sizeof(h->hash), &h->hash_len) < 0 ||
        h->salt_len < ARGON2_MIN_SALT_LENGTH || h->hash_len < PASSWORD_OUT_MIN)
        return -1;
    h->version = v;
    h->m_kib = m;
    h->t = t;
    h->p = p;
    return 0;
}

static bic_err acquire(void)
{
    if (pw.max == 0) { /* password_init not called (unit tests): one at a time */
        pw.max = 1;
        pthread_once(&pw.once, init_slots);
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (sem_timedwait(&pw.slots, &until) < 0) {
        if (errno == EINTR) continue;
        LOG_WARN(NULL, "password hashing queue full for 10 s");
        return BIC_E_UNAVAILABLE;
    }
    return BIC_E_OK;
}

/* a slot's buffer: a free one, else a new one (NULL when memory is short: malloc then) */
static unsigned char *buf_take(void)
{
    unsigned char *b = NULL;
    pthread_mutex_lock(&pw.lock);
    if (!pw.buf_len) pw.buf_len = (size_t)pw.m_kib * 1024;
    if (pw.nfree > 0) {
        b = pw.free_buf[--pw.nfree];
    } else if (pw.nmade < pw.max && pw.nmade < MAX_BUFS) {
        void *m =
            mmap(NULL, pw.buf_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            b = m;
            pw.nmade++;
        }
    }
    pthread_mutex_unlock(&pw.lock);
    return b;
}

static void buf_give(unsigned char *b)
{
    if (!b) return;
    pthread_mutex_lock(&pw.lock);
    pw.free_buf[pw.nfree++] = b;
    pthread_mutex_unlock(&pw.lock);
}

static int work_alloc(uint8_t **memory, size_t bytes)
{
    if (my_buf && bytes <= pw.buf_len) {
        *memory = my_buf;
        return 0;
    }
    *memory = malloc(bytes);
    return *memory ? 0 : -1;
}

static void work_free(uint8_t *memory, size_t bytes)
{
    (void)bytes;
    if (memory != my_buf) free(memory);
}

static bic_err acquire_work(void)
{
    bic_err e = acquire();
    if (e == BIC_E_OK) my_buf = buf_take();
    return e;
}

static void release(void)
{
    buf_give(my_buf);
    my_buf = NULL;
    sem_post(&pw.slots);
}

/* a context for argon2id with bicd's work memory; the caller fills the rest */
static argon2_context work_context(void)
{
    return (argon2_context){.version = ARGON2_VERSION_13,
                            .allocate_cbk = work_alloc,
                            .free_cbk = work_free,
                            .flags = ARGON2_DEFAULT_FLAGS};
}

static bic_err hash_locked(const char *pwd, char out[PASSWORD_HASH_LEN])
{
    unsigned char salt[16], raw[32];
    if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt)) return BIC_E_INTERNAL;
    size_t n = strlen(pwd);
    argon2_context c = work_context();
    c.out = raw;
    c.outlen = sizeof(raw);
    c.pwd = (uint8_t *)pwd;
    c.pwdlen = (uint32_t)n;
    c.salt = salt;
    c.saltlen = sizeof(salt);
    c.t_cost = pw.t;
    c.m_cost = pw.m_kib;
    c.lanes = c.threads = pw.p;
    int rc = argon2id_ctx(&c);
    if (rc == ARGON2_OK)
        rc = password_encode(pw.m_kib, pw.t, pw.p, salt, sizeof(salt), raw, sizeof(raw), out,
                             PASSWORD_HASH_LEN) < 0
                 ? ARGON2_ENCODING_FAIL
                 : ARGON2_OK;
    if (rc != ARGON2_OK) {
        LOG_ERROR(NULL, "argon2id hash: %s", argon2_error_message(rc));
        return BIC_E_INTERNAL;
    }
    return BIC_E_OK;
}

bic_err password_hash(const char *pwd, char out[PASSWORD_HASH_LEN])
{
    bic_err e = acquire_work();
    if (e != BIC_E_OK) return e;
    e = hash_locked(pwd, out);
    release();
    return e;
}

bic_err password_verify(const char *pwd, const char *encoded, bool *ok)
{
    *ok = false;
    bic_err e = acquire_work();
    if (e != BIC_E_OK) return e;
    struct password_params h;
    if (!encoded || password_decode(encoded, &h) < 0) {
        /* Unknown user or no local password: spend the same effort, then refuse. */
        char scratch[PASSWORD_HASH_LEN];
        if (encoded && !strncmp(encoded, "$argon2id$", 10))
            LOG_WARN(NULL, "a stored password hash is malformed: refused");
        e = hash_locked(pwd, scratch);
        release();
        return e;
    }
    argon2_context c = work_context();
    unsigned char raw[sizeof(h.hash)];
    c.out = raw;
    c.outlen = (uint32_t)h.hash_len;
    c.pwd = (uint8_t *)pwd;
    c.pwdlen = (uint32_t)strlen(pwd);
    c.salt = h.salt;
    c.saltlen = (uint32_t)h.salt_len;
    c.t_cost = h.t;
    c.m_cost = h.m_kib;
    c.lanes = c.threads = h.p;
    c.version = h.version;
    /* argon2id_verify_ctx hashes into c.out and compares it with h.hash in constant time */
    int rc = argon2id_verify_ctx(&c, (const char *)h.hash);
    release();
    *ok = rc == ARGON2_OK;
    if (rc != ARGON2_OK && rc != ARGON2_VERIFY_MISMATCH)
        LOG_WARN(NULL, "argon2id_verify: %s", argon2_error_message(rc));
    return BIC_E_OK;
}

bool password_acceptable(const char *p, char *msg, size_t msglen)
{
    size_t n = strlen(p);
    if (n < PASSWORD_MIN_LEN) {
        snprintf(msg, msglen, "the password must be at least %d characters", PASSWORD_MIN_LEN);
        return false;
    }
    if (n > PASSWORD_MAX_LEN) {
        snprintf(msg, msglen, "the password may be at most %d bytes", PASSWORD_MAX_LEN);
        return false;
    }
    return true;
}
