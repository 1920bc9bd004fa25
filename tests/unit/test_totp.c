/*
 * test_totp.c - fcgi/totp.c: HOTP/TOTP against the RFCs' test vectors, the window and replay
 * rules, base32, otpauth URIs, the QR code's SVG and recovery codes.
 */
#include "bic_test.h"

#include <qrencode.h>

#include "arena.h"
#include "totp.h"

/* RFC 6238 appendix B seeds: ASCII "1234567890" repeated to the hash's length */
static const char SEED20[] = "12345678901234567890";
static const char SEED32[] = "12345678901234567890123456789012";
static const char SEED64[] = "1234567890123456789012345678901234567890123456789012345678901234";

static void hotp_matches_rfc4226_appendix_d(void **state)
{
    (void)state;
    static const char *want[] = {"755224", "287082", "359152", "969429", "338314",
                                 "254676", "287922", "162583", "399871", "520489"};
    for (uint64_t c = 0; c < 10; c++) {
        char got[9];
        assert_int_equal(totp_hotp((const unsigned char *)SEED20, 20, TOTP_SHA1, c, 6, got), 0);
        assert_string_equal(got, want[c]);
    }
}

static void totp_matches_rfc6238_appendix_b_for_sha1_sha256_sha512(void **state)
{
    (void)state;
    static const struct {
        long long t;
        const char *sha1, *sha256, *sha512;
    } v[] = {
        {59, "94287082", "46119246", "90693936"},
        {1111111109, "07081804", "68084774", "25091201"},
        {1111111111, "14050471", "67062674", "99943326"},
        {1234567890, "89005924", "91819424", "93441116"},
        {2000000000, "69279037", "90698825", "38618901"},
        {20000000000LL, "65353130", "77737706", "47863826"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char got[9];
        uint64_t step = (uint64_t)totp_step((time_t)v[i].t);
        assert_int_equal(totp_hotp((const unsigned char *)SEED20, 20, TOTP_SHA1, step, 8, got), 0);
        assert_string_equal(got, v[i].sha1);
        assert_int_equal(totp_hotp((const unsigned char *)SEED32, 32, TOTP_SHA256, step, 8, got),
                         0);
        assert_string_equal(got, v[i].sha256);
        assert_int_equal(totp_hotp((const unsigned char *)SEED64, 64, TOTP_SHA512, step, 8, got),
                         0);
        assert_string_equal(got, v[i].sha512);
    }
}

static void hotp_refuses_digit_counts_outside_6_to_8(void **state)
{
    (void)state;
    char got[16] = "untouched";
    assert_int_equal(totp_hotp((const unsigned char *)SEED20, 20, TOTP_SHA1, 1, 5, got), -1);
    assert_int_equal(totp_hotp((const unsigned char *)SEED20, 20, TOTP_SHA1, 1, 9, got), -1);
    assert_string_equal(got, "untouched");
}

static void steps_are_30_seconds_from_the_epoch(void **state)
{
    (void)state;
    assert_int_equal(totp_step(0), 0);
    assert_int_equal(totp_step(29), 0);
    assert_int_equal(totp_step(30), 1);
    assert_int_equal(totp_step(59), 1);
    assert_int_equal(totp_step(60), 2);
    assert_int_equal(totp_step(-5), 0);
}

/* The 6-digit SHA-1 code of step s for the RFC's seed. */
static void code_at(int64_t s, char out[7])
{
    assert_int_equal(totp_hotp((const unsigned char *)SEED20, 20, TOTP_SHA1, (uint64_t)s, 6, out),
                     0);
}

static void check_accepts_the_previous_current_and_next_step(void **state)
{
    (void)state;
    const time_t now = 1700000015; /* the middle of step 56666667 */
    const int64_t t = totp_step(now);
    for (int64_t d = -1; d <= 1; d++) {
        char code[7];
        int64_t step = -1;
        code_at(t + d, code);
        assert_int_equal(totp_check((const unsigned char *)SEED20, code, now, 0, &step),
                         TOTP_MATCH);
        assert_int_equal(step, t + d);
    }
}

static void check_refuses_codes_two_steps_away(void **state)
{
    (void)state;
    const time_t now = 1700000015;
    const int64_t t = totp_step(now);
    for (int64_t d = -2; d <= 2; d += 4) {
        char code[7];
        int64_t step = -1;
        code_at(t + d, code);
        assert_int_equal(totp_check((const unsigned char *)SEED20, code, now, 0, &step),
                         TOTP_NO_MATCH);
        assert_int_equal(step, -1);
    }
}

static void check_refuses_a_used_step_and_every_earlier_one(void **state)
{
    (void)state;
    const time_t now = 1700000015;
    const int64_t t = totp_step(now);
    char cur[7], prev[7], next[7];
    int64_t step = -1;
    code_at(t, cur);
    code_at(t - 1, prev);
    code_at(t + 1, next);
    /* the current step was used: it and the one before are replays, the next is still fine */
    assert_int_equal(totp_check((const unsigned char *)SEED20, cur, now, t, &step), TOTP_REPLAYED);
    assert_int_equal(totp_check((const unsigned char *)SEED20, prev, now, t, &step), TOTP_REPLAYED);
    assert_int_equal(step, -1);
    assert_int_equal(totp_check((const unsigned char *)SEED20, next, now, t, &step), TOTP_MATCH);
    assert_int_equal(step, t + 1);
    /* a wrong code stays wrong, not a replay, whatever was used before */
    char wrong[12];
    snprintf(wrong, sizeof(wrong), "%06u", (unsigned)(atoi(cur) + 1) % 1000000u);
    if (strcmp(wrong, prev) && strcmp(wrong, next))
        assert_int_equal(totp_check((const unsigned char *)SEED20, wrong, now, t, &step),
                         TOTP_NO_MATCH);
}

static void check_refuses_codes_of_the_wrong_length(void **state)
{
    (void)state;
    const time_t now = 1700000015;
    char code[7], longer[8];
    int64_t step = -1;
    code_at(totp_step(now), code);
    snprintf(longer, sizeof(longer), "%s0", code);
    assert_int_equal(totp_check((const unsigned char *)SEED20, longer, now, 0, &step),
                     TOTP_NO_MATCH);
    code[5] = '\0';
    assert_int_equal(totp_check((const unsigned char *)SEED20, code, now, 0, &step), TOTP_NO_MATCH);
}

static void codes_are_normalized_from_what_people_type(void **state)
{
    (void)state;
    char out[TOTP_DIGITS + 1];
    assert_true(totp_code_normalize("123456", out));
    assert_string_equal(out, "123456");
    assert_true(totp_code_normalize(" 123 456 ", out));
    assert_string_equal(out, "123456");
    assert_true(totp_code_normalize("123-456", out));
    assert_string_equal(out, "123456");
    assert_false(totp_code_normalize("12345", out));
    assert_false(totp_code_normalize("1234567", out));
    assert_false(totp_code_normalize("12a456", out));
    assert_false(totp_code_normalize("", out));
    assert_false(totp_code_normalize("１２３４５６", out)); /* full-width digits are not digits */
}

static void base32_encodes_the_rfc4648_vectors_without_padding(void **state)
{
    (void)state;
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *want[] = {"", "MY", "MZXQ", "MZXW6", "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI"};
    for (size_t i = 0; i < 7; i++) {
        char out[32];
        size_t n = base32_encode((const unsigned char *)in[i], strlen(in[i]), out, sizeof(out));
        assert_int_equal(n, strlen(want[i]));
        assert_string_equal(out, want[i]);
    }
    char out[TOTP_B32_LEN + 1];
    assert_int_equal(base32_encode((const unsigned char *)SEED20, 20, out, sizeof(out)), 32);
    assert_string_equal(out, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    assert_int_equal(base32_encode((const unsigned char *)SEED20, 20, out, 32),
                     0); /* no NUL room */
}

static void base32_decodes_padded_unpadded_and_lower_case(void **state)
{
    (void)state;
    static const char *in[] = {
        "MY======", "mzxq", "MZXW6===", "MZXW 6YQ=", "mzxw6ytb", "MZXW6YTBOI======"};
    static const char *want[] = {"f", "fo", "foo", "foob", "fooba", "foobar"};
    for (size_t i = 0; i < 6; i++) {
        unsigned char out[16];
        long n = base32_decode(in[i], out, sizeof(out));
        assert_int_equal(n, (long)strlen(want[i]));
        assert_memory_equal(out, want[i], (size_t)n);
    }
    unsigned char secret[TOTP_SECRET_LEN];
    assert_int_equal(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", secret, sizeof(secret)), 20);
    assert_memory_equal(secret, SEED20, 20);
}

static void base32_refuses_what_no_encoder_makes(void **state)
{
    (void)state;
    unsigned char out[16];
    assert_int_equal(base32_decode("MY1", out, sizeof(out)), -1);    /* '1' is not base32 */
    assert_int_equal(base32_decode("M", out, sizeof(out)), -1);      /* 1 char: 5 bits */
    assert_int_equal(base32_decode("MZX", out, sizeof(out)), -1);    /* 3 chars: no length */
    assert_int_equal(base32_decode("MZ", out, sizeof(out)), -1);     /* trailing bits set */
    assert_int_equal(base32_decode("MY==MY", out, sizeof(out)), -1); /* data after padding */
    assert_int_equal(base32_decode("MZXW6YTBOI", out, 5), -1);       /* 6 bytes into 5 */
    assert_int_equal(base32_decode("MZXW6YTB\xc3\xa9", out, sizeof(out)), -1); /* non-ASCII */
    assert_int_equal(base32_decode("", out, sizeof(out)), 0);
}

static void base32_round_trips_random_secrets(void **state)
{
    (void)state;
    for (int i = 0; i < 200; i++) {
        unsigned char s[TOTP_SECRET_LEN], back[TOTP_SECRET_LEN];
        char b32[TOTP_B32_LEN + 1];
        assert_int_equal(totp_secret_new(s), 0);
        assert_int_equal(base32_encode(s, sizeof(s), b32, sizeof(b32)), TOTP_B32_LEN);
        assert_int_equal(base32_decode(b32, back, sizeof(back)), TOTP_SECRET_LEN);
        assert_memory_equal(s, back, sizeof(s));
    }
}

static void new_secrets_differ(void **state)
{
    (void)state;
    unsigned char a[TOTP_SECRET_LEN], b[TOTP_SECRET_LEN];
    assert_int_equal(totp_secret_new(a), 0);
    assert_int_equal(totp_secret_new(b), 0);
    assert_memory_not_equal(a, b, sizeof(a));
}

static void uri_follows_the_key_uri_format_with_encoded_label(void **state)
{
    (void)state;
    bic_arena *a = arena_new(0);
    char *uri = totp_uri(a, "BIC", "kim min@vdi.example.org", (const unsigned char *)SEED20);
    assert_string_equal(uri, "otpauth://totp/BIC:kim%20min%40vdi.example.org"
                             "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=BIC"
                             "&algorithm=SHA1&digits=6&period=30");
    uri = totp_uri(a, "B&C:1", "a/b?c", (const unsigned char *)SEED20);
    assert_true(test_contains(uri, "otpauth://totp/B%26C%3A1:a%2Fb%3Fc?secret="));
    assert_true(test_contains(uri, "&issuer=B%26C%3A1&"));
    arena_free(a);
}

/* Parses the path of totp_qr_svg ("M x yhNv1h-Nz" runs) back into a size x size grid. */
static unsigned char *svg_grid(const char *svg, int *size)
{
    const char *vb = strstr(svg, "viewBox=\"0 0 ");
    assert_non_null(vb);
    int w = 0, h = 0;
    assert_int_equal(sscanf(vb, "viewBox=\"0 0 %d %d\"", &w, &h), 2);
    assert_int_equal(w, h);
    unsigned char *g = calloc((size_t)w * (size_t)w, 1);
    const char *d = strstr(svg, " d=\"");
    assert_non_null(d);
    d += 4;
    while (*d == 'M') {
        int x, y, run, back, n = 0;
        assert_int_equal(sscanf(d, "M%d %dh%dv1h-%dz%n", &x, &y, &run, &back, &n), 4);
        assert_int_equal(run, back);
        assert_true(x >= 0 && y >= 0 && x + run <= w && y < w);
        for (int i = 0; i < run; i++)
            g[y * w + x + i] = 1;
        d += n;
    }
    assert_int_equal(*d, '"');
    *size = w;
    return g;
}

static void qr_svg_draws_exactly_the_modules_of_the_qr_code(void **state)
{
    (void)state;
    bic_arena *a = arena_new(0);
    const char *uri = totp_uri(a, "BIC", "admin@127.0.0.1", (const unsigned char *)SEED20);
    char *svg = totp_qr_svg(a, uri);
    assert_non_null(svg);
    assert_true(!strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 40));
    assert_true(test_contains(svg, "</svg>"));
    assert_false(test_contains(svg, "<script"));
    int size = 0;
    unsigned char *g = svg_grid(svg, &size);
    QRcode *qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    assert_non_null(qr);
    assert_int_equal(size, qr->width + 8); /* four modules of quiet zone on each side */
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            int in = x >= 4 && y >= 4 && x < size - 4 && y < size - 4;
            int dark = in && (qr->data[(y - 4) * qr->width + (x - 4)] & 1);
            if (g[y * size + x] != dark) test_fail("module %d,%d differs", x, y);
        }
    /* the top-left finder pattern: a 7-module dark row at the quiet zone's corner */
    assert_true(test_contains(svg, "M4 4h7v1h-7z"));
    QRcode_free(qr);
    free(g);
    arena_free(a);
}

static void qr_svg_of_text_too_long_for_any_version_is_null(void **state)
{
    (void)state;
    bic_arena *a = arena_new(0);
    size_t n = 4000; /* version 40-M holds 2331 bytes */
    char *big = arena_alloc(a, n + 1);
    memset(big, 'x', n);
    assert_null(totp_qr_svg(a, big));
    arena_free(a);
}

static void recovery_codes_are_four_groups_of_four_without_look_alikes(void **state)
{
    (void)state;
    char seen[50][RECOVERY_CODE_LEN + RECOVERY_CODE_LEN / 4];
    for (int i = 0; i < 50; i++) {
        char *c = seen[i];
        assert_int_equal(totp_recovery_new(c), 0);
        assert_int_equal(strlen(c), 19);
        for (int k = 0; k < 19; k++) {
            if (k % 5 == 4)
                assert_int_equal(c[k], '-');
            else
                assert_non_null(strchr("23456789abcdefghjkmnpqrstuvwxyz", c[k]));
        }
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[j], c);
        char norm[RECOVERY_CODE_LEN + 1];
        assert_true(totp_recovery_normalize(c, norm));
        assert_int_equal(strlen(norm), RECOVERY_CODE_LEN);
    }
}

static void recovery_codes_normalize_case_dashes_and_spaces(void **state)
{
    (void)state;
    char out[RECOVERY_CODE_LEN + 1];
    assert_true(totp_recovery_normalize("abcd-efgh-jkmn-pqrs", out));
    assert_string_equal(out, "abcdefghjkmnpqrs");
    assert_true(totp_recovery_normalize(" ABCD EFGH-jkmn pqrs ", out));
    assert_string_equal(out, "abcdefghjkmnpqrs");
    assert_false(totp_recovery_normalize("abcd-efgh-jkmn-pqr", out));   /* 15 characters */
    assert_false(totp_recovery_normalize("abcd-efgh-jkmn-pqrst", out)); /* 17 characters */
    assert_false(totp_recovery_normalize("abcd-efgh-jkmn-pqr0", out));  /* 0 is not used */
    assert_false(totp_recovery_normalize("abcd-efgh-jkmn-pqro", out));  /* nor o */
    assert_false(totp_recovery_normalize("abcd-efgh-jkmn-pqr1", out));  /* nor 1 */
    assert_false(totp_recovery_normalize("123456", out));               /* a TOTP code */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hotp_matches_rfc4226_appendix_d),
        cmocka_unit_test(totp_matches_rfc6238_appendix_b_for_sha1_sha256_sha512),
        cmocka_unit_test(hotp_refuses_digit_counts_outside_6_to_8),
        cmocka_unit_test(steps_are_30_seconds_from_the_epoch),
        cmocka_unit_test(check_accepts_the_previous_current_and_next_step),
        cmocka_unit_test(check_refuses_codes_two_steps_away),
        cmocka_unit_test(check_refuses_a_used_step_and_every_earlier_one),
        cmocka_unit_test(check_refuses_codes_of_the_wrong_length),
        cmocka_unit_test(codes_are_normalized_from_what_people_type),
        cmocka_unit_test(base32_encodes_the_rfc4648_vectors_without_padding),
        cmocka_unit_test(base32_decodes_padded_unpadded_and_lower_case),
        cmocka_unit_test(base32_refuses_what_no_encoder_makes),
        cmocka_unit_test(base32_round_trips_random_secrets),
        cmocka_unit_test(new_secrets_differ),
        cmocka_unit_test(uri_follows_the_key_uri_format_with_encoded_label),
        cmocka_unit_test(qr_svg_draws_exactly_the_modules_of_the_qr_code),
        cmocka_unit_test(qr_svg_of_text_too_long_for_any_version_is_null),
        cmocka_unit_test(recovery_codes_are_four_groups_of_four_without_look_alikes),
        cmocka_unit_test(recovery_codes_normalize_case_dashes_and_spaces),
    };
    return cmocka_run_group_tests_name("totp", tests, NULL, NULL);
}
