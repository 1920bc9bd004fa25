/*
 * test_agent_verify.c - agent/ag_sig.c and agent/ag_verify.c: CCC's Ed25519
 * signature over the exact body, and the acceptance rules of a task (server_id,
 * issued_at within 120 s, nonce not seen in 10 minutes).
 *
 * Each test makes its own key pair with EVP_PKEY_keygen and signs like CCC does
 * (EVP_DigestSign over the body bytes, base64 of the 64-byte signature).
 */
#include "bic_test.h"

#include <openssl/evp.h>

#include "ag_sig.h"
#include "ag_util.h"
#include "ag_verify.h"

#define NOW       1795500000LL
#define SERVER_ID 17

struct keypair {
    EVP_PKEY *pkey;
    unsigned char pub[AG_SIG_KEY_LEN];
};

static void keygen(struct keypair *k)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    k->pkey = NULL;
    assert_int_equal(EVP_PKEY_keygen(ctx, &k->pkey), 1);
    EVP_PKEY_CTX_free(ctx);
    size_t n = sizeof(k->pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &n), 1);
    assert_int_equal(n, AG_SIG_KEY_LEN);
}

/* base64 signature of body by k (malloc'd). */
static char *sign(const struct keypair *k, const char *body)
{
    unsigned char sig[64];
    size_t n = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, (const unsigned char *)body, strlen(body)), 1);
    EVP_MD_CTX_free(ctx);
    assert_int_equal(n, 64);
    char *b64 = ag_b64_encode(sig, n);
    assert_non_null(b64);
    return b64;
}

static char *task_body(long long task_id, long long server_id, long long issued_at,
                       const char *nonce)
{
    char *s = NULL;
    assert_true(asprintf(&s,
                         "{\"task_id\":%lld,\"server_id\":%lld,\"type\":\"domain.start\","
                         "\"params\":{\"uuid\":\"6695eb01-f6a4-8304-79aa-97f2502e193f\"},"
                         "\"issued_at\":%lld,\"nonce\":\"%s\"}",
                         task_id, server_id, issued_at, nonce) > 0);
    return s;
}

struct fixture {
    struct keypair ccc, other;
    ag_nonces *nonces;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    keygen(&f->ccc);
    keygen(&f->other);
    f->nonces = ag_nonces_new(AG_NONCE_WINDOW_S, 1000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY_free(f->ccc.pkey);
    EVP_PKEY_free(f->other.pkey);
    ag_nonces_free(f->nonces);
    free(f);
    return 0;
}

/* Runs ag_verify_task on body signed with sig at now; returns the verdict. */
static ag_verdict check(struct fixture *f, const char *body, const char *sig, long long now,
                        ag_task_req *out)
{
    char why[256] = "";
    ag_task_req tmp;
    if (!out) out = &tmp;
    ag_verdict v = ag_verify_task(f->ccc.pub, SERVER_ID, f->nonces, now, body, strlen(body), sig,
                                  out, why, sizeof(why));
    if (v != AG_V_OK) {
        assert_true(*why); /* a refusal always says why */
        assert_null(out->params);
    }
    if (out == &tmp) ag_task_req_clear(&tmp);
    return v;
}

static void signed_task_is_accepted_and_parsed(void **state)
{
    struct fixture *f = *state;
    char *body = task_body(981, SERVER_ID, NOW, "abcdefghijklmnopqrstuvwxyz0123");
    char *sig = sign(&f->ccc, body);
    ag_task_req t;
    assert_int_equal(check(f, body, sig, NOW, &t), AG_V_OK);
    assert_int_equal(t.task_id, 981);
    assert_int_equal(t.server_id, SERVER_ID);
    assert_string_equal(t.type, "domain.start");
    assert_string_equal(json_string_value(json_object_get(t.params, "uuid")),
                        "6695eb01-f6a4-8304-79aa-97f2502e193f");
    ag_task_req_clear(&t);
    assert_int_equal(ag_verdict_status(AG_V_OK), 202);
    free(body);
    free(sig);
}

static void tampered_body_is_401(void **state)
{
    struct fixture *f = *state;
    char *body = task_body(981, SERVER_ID, NOW, "abcdefghijklmnopqrstuvwxyz0123");
    char *sig = sign(&f->ccc, body);
    char *evil = strstr(body, "domain.start");
    memcpy(evil, "domain.stop!", 12); /* same length, other bytes */
    assert_int_equal(check(f, body, sig, NOW, NULL), AG_V_BAD_SIGNATURE);
    assert_int_equal(ag_verdict_status(AG_V_BAD_SIGNATURE), 401);
    /* one added space is a different body too */
    char *spaced = NULL;
    assert_true(asprintf(&spaced, "%s ", body) > 0);
    assert_int_equal(check(f, spaced, sig, NOW, NULL), AG_V_BAD_SIGNATURE);
    free(spaced);
    free(body);
    free(sig);
}

static void signature_of_another_key_is_401(void **state)
{
    struct fixture *f = *state;
    char *body = task_body(981, SERVER_ID, NOW, "abcdefghijklmnopqrstuvwxyz0123");
    char *sig = sign(&f->other, body);
    assert_int_equal(check(f, body, sig, NOW, NULL), AG_V_BAD_SIGNATURE);
    assert_int_equal(ag_sig_verify(f->other.pub, body, strlen(body), sig), 1);
    free(body);
    free(sig);
}

static void missing_or_malformed_signature_is_401(void **state)
{
    struct fixture *f = *state;
    char *body = task_body(981, SERVER_ID, NOW, "abcdefghijklmnopqrstuvwxyz0123");
    char *sig = sign(&f->ccc, body);
    assert_int_equal(check(f, body, NULL, NOW, NULL), AG_V_BAD_SIGNATURE);
    assert_int_equal(check(f, body, "", NOW, NULL), AG_V_BAD_SIGNATURE);
    assert_int_equal(check(f, body, "not base64!", NOW, NULL), AG_V_BAD_SIGNATURE);
    sig[10] = '\0'; /* a truncated signature */
    assert_int_equal(check(f, body, sig, NOW, NULL), AG_V_BAD_SIGNATURE);
    free(body);
    free(sig);
}

static void issued_at_outside_120_seconds_is_401(void **state)
{
    struct fixture *f = *state;
    const long long cases[][2] = {
        /* issued_at offset, expected */
        {-121, AG_V_STALE}, {-120, AG_V_OK}, {120, AG_V_OK}, {121, AG_V_STALE}, {-3600, AG_V_STALE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char nonce[40];
        snprintf(nonce, sizeof(nonce), "nonce-for-time-case-%zu-xxxxx", i);
        char *body = task_body(100 + (long long)i, SERVER_ID, NOW + cases[i][0], nonce);
        char *sig = sign(&f->ccc, body);
        ag_verdict v = check(f, body, sig, NOW, NULL);
        if (v != (ag_verdict)cases[i][1])
            test_fail("issued_at now%+lld: verdict %s", cases[i][0], ag_verdict_name(v));
        free(body);
        free(sig);
    }
    assert_int_equal(ag_verdict_status(AG_V_STALE), 401);
}

static void reused_nonce_is_401_even_for_another_task(void **state)
{
    struct fixture *f = *state;
    char *a = task_body(1, SERVER_ID, NOW, "the-same-nonce-0123456789");
    char *b = task_body(2, SERVER_ID, NOW + 5, "the-same-nonce-0123456789");
    char *sa = sign(&f->ccc, a), *sb = sign(&f->ccc, b);
    assert_int_equal(check(f, a, sa, NOW, NULL), AG_V_OK);
    assert_int_equal(check(f, a, sa, NOW + 1, NULL), AG_V_REPLAY); /* the same request again */
    assert_int_equal(check(f, b, sb, NOW + 5, NULL), AG_V_REPLAY); /* another task */
    assert_int_equal(ag_verdict_status(AG_V_REPLAY), 401);
    free(a);
    free(b);
    free(sa);
    free(sb);
}

static void refused_requests_do_not_burn_their_nonce(void **state)
{
    struct fixture *f = *state;
    /* stale first: the nonce is not recorded, so a fresh request with it passes */
    char *old = task_body(3, SERVER_ID, NOW - 500, "nonce-of-a-refused-task-00");
    char *fresh = task_body(3, SERVER_ID, NOW, "nonce-of-a-refused-task-00");
    char *so = sign(&f->ccc, old), *sf = sign(&f->ccc, fresh);
    assert_int_equal(check(f, old, so, NOW, NULL), AG_V_STALE);
    assert_int_equal(check(f, fresh, sf, NOW, NULL), AG_V_OK);
    free(old);
    free(fresh);
    free(so);
    free(sf);
}

static void wrong_server_id_is_409(void **state)
{
    struct fixture *f = *state;
    char *body = task_body(981, SERVER_ID + 1, NOW, "abcdefghijklmnopqrstuvwxyz0123");
    char *sig = sign(&f->ccc, body);
    assert_int_equal(check(f, body, sig, NOW, NULL), AG_V_WRONG_SERVER);
    assert_int_equal(ag_verdict_status(AG_V_WRONG_SERVER), 409);
    free(body);
    free(sig);
}

static void signed_but_malformed_bodies_are_400(void **state)
{
    struct fixture *f = *state;
    const char *bodies[] = {
        "[]",
        "not json",
        /* duplicate key */
        "{\"task_id\":1,\"task_id\":2,\"server_id\":17,\"type\":\"domain.start\","
        "\"issued_at\":1795500000,\"nonce\":\"abcdefghijklmnopqrstuvwxyz\"}",
        /* unknown key */
        "{\"task_id\":1,\"server_id\":17,\"type\":\"domain.start\",\"extra\":1,"
        "\"issued_at\":1795500000,\"nonce\":\"abcdefghijklmnopqrstuvwxyz\"}",
        /* task_id not positive */
        "{\"task_id\":0,\"server_id\":17,\"type\":\"domain.start\","
        "\"issued_at\":1795500000,\"nonce\":\"abcdefghijklmnopqrstuvwxyz\"}",
        /* nonce too short */
        "{\"task_id\":1,\"server_id\":17,\"type\":\"domain.start\","
        "\"issued_at\":1795500000,\"nonce\":\"short\"}",
        /* params not an object */
        "{\"task_id\":1,\"server_id\":17,\"type\":\"domain.start\",\"params\":[],"
        "\"issued_at\":1795500000,\"nonce\":\"abcdefghijklmnopqrstuvwxyz\"}",
        /* issued_at a string */
        "{\"task_id\":1,\"server_id\":17,\"type\":\"domain.start\","
        "\"issued_at\":\"1795500000\",\"nonce\":\"abcdefghijklmnopqrstuvwxyz\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char *sig = sign(&f->ccc, bodies[i]);
        ag_verdict v = check(f, bodies[i], sig, NOW, NULL);
        if (v != AG_V_BAD_REQUEST) test_fail("body %zu: verdict %s", i, ag_verdict_name(v));
        free(sig);
    }
}

static void task_without_params_gets_an_empty_object(void **state)
{
    struct fixture *f = *state;
    const char *body = "{\"task_id\":5,\"server_id\":17,\"type\":\"inventory.refresh\","
                       "\"issued_at\":1795500000,\"nonce\":\"abcdefghijklmnopqrstuvwxyz\"}";
    char *sig = sign(&f->ccc, body);
    ag_task_req t;
    assert_int_equal(check(f, body, sig, NOW, &t), AG_V_OK);
    assert_true(json_is_object(t.params));
    assert_int_equal(json_object_size(t.params), 0);
    ag_task_req_clear(&t);
    free(sig);
}

static void body_over_64_kib_is_413(void **state)
{
    struct fixture *f = *state;
    size_t n = AG_TASK_BODY_MAX + 1;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[n] = '\0';
    char why[128];
    ag_task_req t;
    assert_int_equal(
        ag_verify_task(f->ccc.pub, SERVER_ID, f->nonces, NOW, big, n, "x", &t, why, sizeof(why)),
        AG_V_TOO_LARGE);
    assert_int_equal(ag_verdict_status(AG_V_TOO_LARGE), 413);
    free(big);
}

static void base64_round_trips_and_rejects_junk(void **state)
{
    (void)state;
    unsigned char in[32], out[40];
    for (int i = 0; i < 32; i++)
        in[i] = (unsigned char)(i * 37 + 1);
    for (size_t len = 0; len <= 32; len++) {
        char *s = ag_b64_encode(in, len);
        assert_int_equal(strlen(s), (len + 2) / 3 * 4);
        assert_int_equal(ag_b64_decode(s, out, sizeof(out)), (ssize_t)len);
        assert_memory_equal(in, out, len);
        free(s);
    }
    assert_int_equal(ag_b64_decode("QUJD", out, sizeof(out)), 3);
    assert_int_equal(ag_b64_decode("QUJ", out, sizeof(out)), -1);      /* not a multiple of 4 */
    assert_int_equal(ag_b64_decode("QU=D", out, sizeof(out)), -1);     /* data after padding */
    assert_int_equal(ag_b64_decode("QUI=QUJD", out, sizeof(out)), -1); /* padding mid-way */
    assert_int_equal(ag_b64_decode("QUJ-", out, sizeof(out)), -1);     /* url-safe alphabet */
    assert_int_equal(ag_b64_decode("QUJD", out, 2), -1);               /* does not fit */
    assert_int_equal(ag_b64_decode("QR==", out, sizeof(out)), -1);     /* non-canonical bits */
}

static void public_key_must_be_32_bytes_of_base64(void **state)
{
    struct fixture *f = *state;
    unsigned char k[AG_SIG_KEY_LEN];
    char *b64 = ag_b64_encode(f->ccc.pub, AG_SIG_KEY_LEN);
    assert_int_equal(ag_sig_key_decode(b64, k), 0);
    assert_memory_equal(k, f->ccc.pub, AG_SIG_KEY_LEN);
    free(b64);
    char *short_key = ag_b64_encode(f->ccc.pub, 31);
    assert_int_equal(ag_sig_key_decode(short_key, k), -1);
    free(short_key);
    assert_int_equal(ag_sig_key_decode(NULL, k), -1);
    assert_int_equal(ag_sig_key_decode("", k), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(signed_task_is_accepted_and_parsed, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_body_is_401, setup, teardown),
        cmocka_unit_test_setup_teardown(signature_of_another_key_is_401, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_or_malformed_signature_is_401, setup, teardown),
        cmocka_unit_test_setup_teardown(issued_at_outside_120_seconds_is_401, setup, teardown),
        cmocka_unit_test_setup_teardown(reused_nonce_is_401_even_for_another_task, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_requests_do_not_burn_their_nonce, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_server_id_is_409, setup, teardown),
        cmocka_unit_test_setup_teardown(signed_but_malformed_bodies_are_400, setup, teardown),
        cmocka_unit_test_setup_teardown(task_without_params_gets_an_empty_object, setup, teardown),
        cmocka_unit_test_setup_teardown(body_over_64_kib_is_413, setup, teardown),
        cmocka_unit_test(base64_round_trips_and_rejects_junk),
        cmocka_unit_test_setup_teardown(public_key_must_be_32_bytes_of_base64, setup, teardown),
    };
    return cmocka_run_group_tests_name("agent_verify", tests, NULL, NULL);
}
