/*
 * test_password.c - fcgi/password.c: argon2id hashing and verification with bicd's reused work
 * memory, and the PHC string codec it verifies through.
 */
#include "bic_test.h"

#include <argon2.h>
#include <pthread.h>

#include "config.h"
#include "password.h"

#define PW "correct horse battery"

static int setup(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    if (config_load(&cfg, NULL, err, sizeof(err)) != 0) return -1;
    cfg.auth_max_concurrent_hashes = 2;
    password_init(&cfg);
    config_free(&cfg);
    return 0;
}

static void hashes_carry_the_configured_cost_and_verify(void **state)
{
    (void)state;
    char h1[PASSWORD_HASH_LEN], h2[PASSWORD_HASH_LEN];
    assert_int_equal(password_hash(PW, h1), BIC_E_OK);
    assert_int_equal(password_hash(PW, h2), BIC_E_OK);
    assert_string_not_equal(h1, h2); /* a new salt every time */
    struct password_params p;
    assert_int_equal(password_decode(h1, &p), 0);
    assert_int_equal(p.version, ARGON2_VERSION_13);
    assert_int_equal(p.m_kib, 19456);
    assert_int_equal(p.t, 2);
    assert_int_equal(p.p, 1);
    assert_int_equal(p.salt_len, 16);
    assert_int_equal(p.hash_len, 32);
    /* the library itself agrees with what bicd wrote */
    assert_int_equal(argon2id_verify(h1, PW, strlen(PW)), ARGON2_OK);
    bool ok = false;
    assert_int_equal(password_verify(PW, h1, &ok), BIC_E_OK);
    assert_true(ok);
    assert_int_equal(password_verify(PW "!", h1, &ok), BIC_E_OK);
    assert_false(ok);
    assert_int_equal(password_verify("", h2, &ok), BIC_E_OK);
    assert_false(ok);
}

static void hashes_the_library_made_verify_and_round_trip(void **state)
{
    (void)state;
    /* other costs than bicd's own: older hashes, or a higher cost set later; 32 MiB needs more
     * than bicd's buffers hold, so that one takes its own memory */
    static const uint32_t cost[][3] = {{19456, 2, 1}, {8192, 3, 1}, {32768, 1, 2}};
    for (size_t i = 0; i < sizeof(cost) / sizeof(cost[0]); i++) {
        unsigned char salt[24];
        for (size_t k = 0; k < sizeof(salt); k++)
            salt[k] = (unsigned char)(i * 31 + k);
        char enc[PASSWORD_HASH_LEN], back[PASSWORD_HASH_LEN];
        size_t saltlen = i == 1 ? 17 : sizeof(salt), outlen = i == 2 ? 33 : 32;
        assert_int_equal(argon2id_hash_encoded(cost[i][1], cost[i][0], cost[i][2], PW, strlen(PW),
                                               salt, saltlen, outlen, enc, sizeof(enc)),
                         ARGON2_OK);
        struct password_params p;
        assert_int_equal(password_decode(enc, &p), 0);
        assert_int_equal(p.m_kib, cost[i][0]);
        assert_int_equal(p.t, cost[i][1]);
        assert_int_equal(p.p, cost[i][2]);
        assert_int_equal(p.salt_len, saltlen);
        assert_memory_equal(p.salt, salt, saltlen);
        assert_int_equal(p.hash_len, outlen);
        assert_true(password_encode(p.m_kib, p.t, p.p, p.salt, p.salt_len, p.hash, p.hash_len, back,
                                    sizeof(back)) > 0);
        assert_string_equal(back, enc);
        bool ok = false;
        assert_int_equal(password_verify(PW, enc, &ok), BIC_E_OK);
        assert_true(ok);
        assert_int_equal(password_verify("correct horse battery.", enc, &ok), BIC_E_OK);
        assert_false(ok);
    }
}

static void malformed_hashes_are_refused_after_the_same_work(void **state)
{
    (void)state;
    char good[PASSWORD_HASH_LEN];
    assert_int_equal(password_hash(PW, good), BIC_E_OK);
    const char *salt = strstr(good, "p=1$") + 4;
    char *bad[] =
        {
            "",
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$"
            "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=4,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHRzYWx0$"
            "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHRzYWx0$"
            "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0$"
            "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$c2Fsd$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA", /* 5
                                                                                              chars
                                                                                            */
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$"
            "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA=",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNh*HRzYWx0$"
            "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFz$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA", /* 4 bytes */
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx1$"
            "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaB", /* pad bits */
        };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct password_params p;
        if (password_decode(bad[i], &p) == 0) test_fail("decoded: %s", bad[i]);
        bool ok = true;
        assert_int_equal(password_verify(PW, bad[i], &ok), BIC_E_OK);
        assert_false(ok);
    }
    /* a good hash with its hash part cut or changed does not verify */
    char cut[PASSWORD_HASH_LEN];
    snprintf(cut, sizeof(cut), "%.*s", (int)(strlen(good) - 4), good);
    bool ok = true;
    assert_int_equal(password_verify(PW, cut, &ok), BIC_E_OK);
    assert_false(ok);
    char flip[PASSWORD_HASH_LEN];
    snprintf(flip, sizeof(flip), "%s", good);
    flip[strlen(flip) - 2] = flip[strlen(flip) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(password_verify(PW, flip, &ok), BIC_E_OK);
    assert_false(ok);
    assert_true(strlen(salt) > 0);
    assert_int_equal(password_verify(PW, NULL, &ok), BIC_E_OK);
    assert_false(ok);
}

struct worker {
    const char *hash;
    int right, wrong;
};

static void *verify_many(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 4; i++) {
        bool ok = false;
        if (password_verify(i % 2 ? PW "x" : PW, w->hash, &ok) != BIC_E_OK) return NULL;
        if (ok == !(i % 2))
            w->right++;
        else
            w->wrong++;
    }
    return NULL;
}

static void concurrent_verifications_share_the_buffers_correctly(void **state)
{
    (void)state;
    /* six threads, two hashing slots: buffers pass between threads; every answer still right */
    char h[PASSWORD_HASH_LEN];
    assert_int_equal(password_hash(PW, h), BIC_E_OK);
    pthread_t t[6];
    struct worker w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (struct worker){.hash = h};
        assert_int_equal(pthread_create(&t[i], NULL, verify_many, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].right, 4);
        assert_int_equal(w[i].wrong, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hashes_carry_the_configured_cost_and_verify),
        cmocka_unit_test(hashes_the_library_made_verify_and_round_trip),
        cmocka_unit_test(malformed_hashes_are_refused_after_the_same_work),
        cmocka_unit_test(concurrent_verifications_share_the_buffers_correctly),
    };
    return cmocka_run_group_tests_name("password", tests, setup, NULL);
}
