/*
 * test_seal.c - fcgi/seal.c: keys per purpose and AES-256-GCM sealing of secrets at rest
 * (TOTP secrets, OIDC client secrets, directory bind passwords, BMC passwords).
 */
#include "bic_test.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "seal.h"

static void key(unsigned char out[SEAL_KEY_LEN], char fill, seal_purpose p)
{
    unsigned char master[64];
    memset(master, fill, sizeof(master));
    assert_int_equal(seal_derive(master, sizeof(master), p, out), 0);
}

static void keys_are_deterministic_per_master_and_purpose(void **state)
{
    (void)state;
    unsigned char a[SEAL_KEY_LEN], b[SEAL_KEY_LEN], c[SEAL_KEY_LEN], master[64];
    key(a, 'x', SEAL_TOTP);
    key(b, 'x', SEAL_TOTP);
    key(c, 'y', SEAL_TOTP);
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, c, sizeof(a));
    /* each purpose has its own key */
    for (int p = 0; p < SEAL__MAX; p++)
        for (int q = p + 1; q < SEAL__MAX; q++) {
            key(b, 'x', (seal_purpose)p);
            key(c, 'x', (seal_purpose)q);
            assert_memory_not_equal(b, c, sizeof(b));
        }
    /* the derived key is not the master itself */
    memset(master, 'x', sizeof(master));
    assert_memory_not_equal(a, master, sizeof(a));
    assert_int_equal(seal_derive(master, 31, SEAL_TOTP, a), -1);
    assert_int_equal(seal_derive(NULL, 64, SEAL_TOTP, a), -1);
    assert_int_equal(seal_derive(master, 64, SEAL__MAX, a), -1);
}

static void keys_stay_what_earlier_releases_derived(void **state)
{
    (void)state;
    /* HMAC-SHA256(32 bytes of 0x01, label): a changed label would orphan every sealed row */
    static const char *const want[SEAL__MAX] = {
        [SEAL_TOTP] = "bic totp secret key v1",
        [SEAL_OIDC] = "bic oidc client secret key v1",
        [SEAL_DIRECTORY] = "bic directory bind password key v1",
        [SEAL_BMC] = "bic bmc password key v1",
    };
    unsigned char master[32], got[SEAL_KEY_LEN], ref[SEAL_KEY_LEN];
    unsigned int len = 0;
    memset(master, 1, sizeof(master));
    for (int p = 0; p < SEAL__MAX; p++) {
        assert_non_null(want[p]);
        assert_int_equal(seal_derive(master, sizeof(master), (seal_purpose)p, got), 0);
        assert_non_null(HMAC(EVP_sha256(), master, sizeof(master), (const unsigned char *)want[p],
                             strlen(want[p]), ref, &len));
        assert_memory_equal(got, ref, sizeof(got));
    }
}

static void sealed_values_open_only_with_the_same_key_and_owner(void **state)
{
    (void)state;
    unsigned char k[SEAL_KEY_LEN], other[SEAL_KEY_LEN];
    key(k, 'k', SEAL_OIDC);
    key(other, 'o', SEAL_OIDC);
    const char *secret = "client-secret-value";
    size_t n = strlen(secret);
    unsigned char sealed[64 + SEAL_OVERHEAD], sealed2[64 + SEAL_OVERHEAD], back[64 + 1];
    size_t m = n + SEAL_OVERHEAD;
    assert_int_equal(seal_encrypt(k, "user:42", (const unsigned char *)secret, n, sealed), 0);
    /* the secret does not appear in what is stored */
    assert_null(memmem(sealed, m, secret, 8));
    assert_int_equal(seal_decrypt(k, "user:42", sealed, m, back), 0);
    assert_string_equal((char *)back, secret);
    /* a fresh nonce each time: the same secret seals differently */
    assert_int_equal(seal_encrypt(k, "user:42", (const unsigned char *)secret, n, sealed2), 0);
    assert_memory_not_equal(sealed, sealed2, m);
    assert_int_equal(seal_decrypt(k, "user:42", sealed2, m, back), 0);
    assert_string_equal((char *)back, secret);
    /* another owner, another key, a flipped bit anywhere, a wrong length: nothing opens */
    assert_int_equal(seal_decrypt(k, "user:43", sealed, m, back), -1);
    assert_int_equal(seal_decrypt(other, "user:42", sealed, m, back), -1);
    for (size_t i = 0; i < m; i++) {
        unsigned char bad[sizeof(sealed)];
        memcpy(bad, sealed, m);
        bad[i] ^= 0x01;
        assert_int_equal(seal_decrypt(k, "user:42", bad, m, back), -1);
    }
    assert_int_equal(seal_decrypt(k, "user:42", sealed, m - 1, back), -1);
    assert_int_equal(seal_decrypt(k, "user:42", sealed, SEAL_OVERHEAD - 1, back), -1);
    assert_int_equal(seal_decrypt(k, "user:42", NULL, m, back), -1);
}

static void empty_and_largest_values_round_trip_and_larger_are_refused(void **state)
{
    (void)state;
    unsigned char k[SEAL_KEY_LEN];
    key(k, 'k', SEAL_BMC);
    static unsigned char big[SEAL_MAX + 1], sealed[SEAL_MAX + 1 + SEAL_OVERHEAD],
        back[SEAL_MAX + 1];
    memset(big, 'a', sizeof(big));
    assert_int_equal(seal_encrypt(k, "server:1", big, 0, sealed), 0);
    assert_int_equal(seal_decrypt(k, "server:1", sealed, SEAL_OVERHEAD, back), 0);
    assert_int_equal(back[0], 0);
    assert_int_equal(seal_encrypt(k, "server:1", big, SEAL_MAX, sealed), 0);
    assert_int_equal(seal_decrypt(k, "server:1", sealed, SEAL_MAX + SEAL_OVERHEAD, back), 0);
    assert_memory_equal(back, big, SEAL_MAX);
    assert_int_equal(back[SEAL_MAX], 0);
    assert_int_equal(seal_encrypt(k, "server:1", big, SEAL_MAX + 1, sealed), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_are_deterministic_per_master_and_purpose),
        cmocka_unit_test(keys_stay_what_earlier_releases_derived),
        cmocka_unit_test(sealed_values_open_only_with_the_same_key_and_owner),
        cmocka_unit_test(empty_and_largest_values_round_trip_and_larger_are_refused),
    };
    return cmocka_run_group_tests_name("seal", tests, NULL, NULL);
}
