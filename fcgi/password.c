#include "password.h"

#include <argon2.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
    uint32_t m_kib, t, p;
    int max;
    sem_t slots;
    char dummy[PASSWORD_HASH_LEN];
    pthread_once_t once;
} pw = {.m_kib = 19456, .t = 2, .p = 1, .once = PTHREAD_ONCE_INIT};

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

static void release(void)
{
    sem_post(&pw.slots);
}

static bic_err hash_locked(const char *pwd, char out[PASSWORD_HASH_LEN])
{
    unsigned char salt[16];
    if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt)) return BIC_E_INTERNAL;
    int rc = argon2id_hash_encoded(pw.t, pw.m_kib, pw.p, pwd, strlen(pwd), salt, sizeof(salt), 32,
                                   out, PASSWORD_HASH_LEN);
    if (rc != ARGON2_OK) {
        LOG_ERROR(NULL, "argon2id_hash_encoded: %s", argon2_error_message(rc));
        return BIC_E_INTERNAL;
    }
    return BIC_E_OK;
}

bic_err password_hash(const char *pwd, char out[PASSWORD_HASH_LEN])
{
    bic_err e = acquire();
    if (e != BIC_E_OK) return e;
    e = hash_locked(pwd, out);
    release();
    return e;
}

bic_err password_verify(const char *pwd, const char *encoded, bool *ok)
{
    *ok = false;
    bic_err e = acquire();
    if (e != BIC_E_OK) return e;
    if (!encoded || strncmp(encoded, "$argon2id$", 10) != 0) {
        /* Unknown user or no local password: spend the same effort, then refuse. */
        char scratch[PASSWORD_HASH_LEN];
        e = hash_locked(pwd, scratch);
        release();
        return e;
    }
    int rc = argon2id_verify(encoded, pwd, strlen(pwd));
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
