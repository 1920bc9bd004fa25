/*
 * test_oidc_token.c - fcgi/oidc.c: base64url, PKCE against RFC 7636 appendix B, RSA keys from JWKs
 * (built with OpenSSL 3 and compared with the key they came from), RS256 verification against
 * RFC 7515 appendix A.2, every ID token check with tokens signed here and the discovery
 * document's checks.
 */
#include "bic_test.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <time.h>

#include "arena.h"
#include "oidc.h"

static bic_arena *A;

static int setup(void **state)
{
    (void)state;
    A = arena_new(1 << 16);
    return A ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(A);
    return 0;
}

/* ---- encodings ---- */

static void base64url_round_trips_and_refuses_other_spellings(void **state)
{
    (void)state;
    const unsigned char raw[] = {0xfb, 0xff, 0x00, 0x3e, 0x3f};
    for (size_t n = 0; n <= sizeof(raw); n++) {
        char *enc = oidc_b64url_encode(A, raw, n);
        assert_null(strchr(enc, '='));
        unsigned char *dec;
        size_t len;
        assert_int_equal(oidc_b64url_decode(A, enc, strlen(enc), &dec, &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(dec, raw, n);
    }
    assert_string_equal(oidc_b64url_encode(A, raw, 3), "-_8A");
    unsigned char *dec;
    size_t len;
    assert_int_equal(oidc_b64url_decode(A, "-_8A", 4, &dec, &len), 0);
    assert_int_equal(oidc_b64url_decode(A, "+/8A", 4, &dec, &len), -1);  /* base64, not url */
    assert_int_equal(oidc_b64url_decode(A, "QQ==", 4, &dec, &len), -1);  /* padding */
    assert_int_equal(oidc_b64url_decode(A, "QUJDR", 5, &dec, &len), -1); /* 1 mod 4 */
    assert_int_equal(oidc_b64url_decode(A, "QR", 2, &dec, &len), -1);    /* unused bits set */
    assert_int_equal(oidc_b64url_decode(A, "QQ", 2, &dec, &len), 0);
    assert_string_equal((char *)dec, "A");
    assert_string_equal(oidc_url_encode(A, "a b/c?d=é~"), "a%20b%2Fc%3Fd%3D%C3%A9~");
}

static void pkce_matches_rfc7636_appendix_b(void **state)
{
    (void)state;
    char out[OIDC_PKCE_LEN + 1];
    oidc_pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", out);
    assert_string_equal(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

/* ---- keys ---- */

static EVP_PKEY *rsa_new(unsigned bits)
{
    EVP_PKEY *k = EVP_RSA_gen(bits);
    assert_non_null(k);
    return k;
}

static const char *bn_b64(EVP_PKEY *k, const char *name)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return oidc_b64url_encode(A, buf, (size_t)n);
}

/* The public JWK of k (kid may be NULL). New reference. */
static json_t *jwk_of(EVP_PKEY *k, const char *kid)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "use", "sig", "alg", "RS256", "n",
                  bn_b64(k, OSSL_PKEY_PARAM_RSA_N), "e", bn_b64(k, OSSL_PKEY_PARAM_RSA_E));
    if (kid) json_object_set_new(j, "kid", json_string(kid));
    return j;
}

static void jwk_builds_the_same_public_key(void **state)
{
    (void)state;
    EVP_PKEY *k = rsa_new(2048);
    json_t *jwk = jwk_of(k, "a");
    const char *why = "unset";
    EVP_PKEY *pub = oidc_jwk_rsa(A, jwk, &why);
    assert_non_null(pub);
    assert_null(why);
    assert_int_equal(EVP_PKEY_eq(pub, k), 1);
    assert_int_equal(EVP_PKEY_get_bits(pub), 2048);
    EVP_PKEY_free(pub);
    /* a leading zero byte on n changes nothing */
    unsigned char buf[300];
    BIGNUM *bn = NULL;
    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &bn);
    buf[0] = 0;
    int n = BN_bn2bin(bn, buf + 1);
    BN_free(bn);
    json_object_set_new(jwk, "n", json_string(oidc_b64url_encode(A, buf, (size_t)n + 1)));
    pub = oidc_jwk_rsa(A, jwk, &why);
    assert_non_null(pub);
    assert_int_equal(EVP_PKEY_eq(pub, k), 1);
    EVP_PKEY_free(pub);
    json_decref(jwk);
    EVP_PKEY_free(k);
}

static void jwk_refusals(void **state)
{
    (void)state;
    EVP_PKEY *k = rsa_new(2048), *small = rsa_new(1024);
    const char *why;
    json_t *good = jwk_of(k, NULL);
    struct {
        const char *key;
        json_t *value; /* NULL: remove the member */
        const char *why_part;
    } cases[] = {
        {"kty", json_string("EC"), "not an RSA key"},
        {"e", NULL, "n or e"},
        {"n", json_string("a+b/"), "n or e"},
        {"e", json_string("AQAA"), "exponent"}, /* 65536: even */
        {"e", json_string("AQ"), "exponent"},   /* 1 */
        {"e", json_string("AQEBAQEBAQEB"), "exponent"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = json_deep_copy(good);
        if (cases[i].value)
            json_object_set_new(j, cases[i].key, cases[i].value);
        else
            json_object_del(j, cases[i].key);
        assert_null(oidc_jwk_rsa(A, j, &why));
        if (!test_contains(why, cases[i].why_part)) test_fail("case %zu: %s", i, why);
        json_decref(j);
    }
    json_t *j = jwk_of(small, NULL);
    assert_null(oidc_jwk_rsa(A, j, &why));
    assert_true(test_contains(why, "2048"));
    json_decref(j);
    /* what may verify RS256 */
    assert_true(oidc_jwk_for_rs256(good));
    j = json_deep_copy(good);
    json_object_set_new(j, "use", json_string("enc"));
    assert_false(oidc_jwk_for_rs256(j));
    json_object_set_new(j, "use", json_string("sig"));
    json_object_set_new(j, "alg", json_string("RS512"));
    assert_false(oidc_jwk_for_rs256(j));
    json_object_del(j, "alg");
    json_object_set_new(j, "key_ops", json_pack("[s]", "encrypt"));
    assert_false(oidc_jwk_for_rs256(j));
    json_object_set_new(j, "key_ops", json_pack("[s, s]", "sign", "verify"));
    assert_true(oidc_jwk_for_rs256(j));
    json_decref(j);
    /* counting usable keys in a set */
    json_t *set = json_pack("{s:[o, o, {s:s, s:s}, o]}", "keys", json_deep_copy(good),
                            json_pack("{s:s, s:s, s:s}", "kty", "RSA", "use", "enc", "n", "AQAB"),
                            "kty", "EC", "crv", "P-256", jwk_of(small, "s"));
    assert_int_equal(oidc_jwks_rs256_count(A, set), 1);
    json_decref(set);
    json_decref(good);
    EVP_PKEY_free(k);
    EVP_PKEY_free(small);
}

/* ---- RS256 against RFC 7515 appendix A.2 ---- */

static const char A2_N[] =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4"
    "d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5re"
    "xMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxX"
    "FvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
static const char A2_JWS[] =
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
    "fQ."
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5"
    "jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb"
    "1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QO"
    "YEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

static void rs256_verifies_rfc7515_appendix_a2(void **state)
{
    (void)state;
    json_t *jwks = json_pack("{s:[{s:s, s:s, s:s}]}", "keys", "kty", "RSA", "n", A2_N, "e", "AQAB");
    oidc_expect x = {"joe", "bic", "n", 1300819000, 60, 600};
    const char *kid;
    json_t *claims;
    /* the signature verifies; the claims are then read and fail at the audience (there is none) */
    assert_int_equal(oidc_id_token_verify(A, A2_JWS, jwks, &x, &kid, &claims),
                     OIDC_TOKEN_BAD_AUDIENCE);
    assert_null(kid);
    assert_null(claims);
    x.issuer = "someone";
    assert_int_equal(oidc_id_token_verify(A, A2_JWS, jwks, &x, &kid, &claims),
                     OIDC_TOKEN_BAD_ISSUER);
    /* one character of the signature changed */
    char *bad = arena_strdup(A, A2_JWS);
    size_t n = strlen(bad);
    bad[n - 5] = bad[n - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(oidc_id_token_verify(A, bad, jwks, &x, &kid, &claims),
                     OIDC_TOKEN_BAD_SIGNATURE);
    /* and in the payload */
    bad = arena_strdup(A, A2_JWS);
    bad[30] = bad[30] == 'A' ? 'B' : 'A';
    assert_int_not_equal(oidc_id_token_verify(A, bad, jwks, &x, &kid, &claims), OIDC_TOKEN_OK);
    json_decref(jwks);
}

/* ---- the ID token checks, with tokens made here ---- */

#define NOW   1700000000L
#define NONCE "n-0123456789"

static EVP_PKEY *key1, *key2;

static const char *b64json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    const char *out = oidc_b64url_encode(A, (const unsigned char *)s, strlen(s));
    free(s);
    json_decref(j);
    return out;
}

/* A compact JWS of header and payload (both stolen), RS256-signed with k (NULL: no signature). */
static const char *sign(EVP_PKEY *k, json_t *header, json_t *payload)
{
    const char *in = arena_printf(A, "%s.%s", b64json(header), b64json(payload));
    unsigned char sig[1024];
    size_t siglen = 0;
    if (k) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        siglen = sizeof(sig);
        assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
        assert_int_equal(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)in, strlen(in)),
                         1);
        EVP_MD_CTX_free(md);
    }
    return arena_printf(A, "%s.%s", in, oidc_b64url_encode(A, sig, siglen));
}

static json_t *claims_ok(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "iss", "https://idp.example", "aud",
                     "bic", "sub", "user-1", "iat", (json_int_t)NOW - 5, "exp",
                     (json_int_t)NOW + 300, "nonce", NONCE, "preferred_username", "alice");
}

static json_t *head(const char *kid)
{
    return kid ? json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "kid", kid)
               : json_pack("{s:s}", "alg", "RS256");
}

static oidc_token_status check(const char *token, json_t *jwks, const char **kid)
{
    oidc_expect x = {"https://idp.example", "bic", NONCE, NOW, 60, 600};
    json_t *claims = NULL;
    const char *k;
    oidc_token_status st = oidc_id_token_verify(A, token, jwks, &x, kid ? kid : &k, &claims);
    if (st == OIDC_TOKEN_OK) {
        assert_non_null(claims);
        assert_string_equal(json_string_value(json_object_get(claims, "preferred_username")),
                            "alice");
        json_decref(claims);
    } else {
        assert_null(claims);
    }
    return st;
}

/* claims_ok() with one member set (value stolen) or removed (value NULL). */
static json_t *claims_with(const char *key, json_t *value)
{
    json_t *c = claims_ok();
    if (value)
        json_object_set_new(c, key, value);
    else
        json_object_del(c, key);
    return c;
}

static void id_token_claims_are_checked(void **state)
{
    (void)state;
    json_t *jwks = json_pack("{s:[o]}", "keys", jwk_of(key1, "k1"));
    struct {
        const char *name;
        json_t *claims;
        oidc_token_status want;
    } cases[] = {
        {"good", claims_ok(), OIDC_TOKEN_OK},
        {"other issuer", claims_with("iss", json_string("https://idp.example/")),
         OIDC_TOKEN_BAD_ISSUER},
        {"no issuer", claims_with("iss", NULL), OIDC_TOKEN_BAD_ISSUER},
        {"other audience", claims_with("aud", json_string("bic2")), OIDC_TOKEN_BAD_AUDIENCE},
        {"audience list with us and azp", NULL, OIDC_TOKEN_OK},
        {"audience list without azp", claims_with("aud", json_pack("[s, s]", "x", "bic")),
         OIDC_TOKEN_BAD_AZP},
        {"audience list without us", claims_with("aud", json_pack("[s, s]", "x", "y")),
         OIDC_TOKEN_BAD_AUDIENCE},
        {"azp of another client", claims_with("azp", json_string("x")), OIDC_TOKEN_BAD_AZP},
        {"audience not a string", claims_with("aud", json_integer(1)), OIDC_TOKEN_BAD_AUDIENCE},
        {"expired beyond the skew", claims_with("exp", json_integer(NOW - 61)), OIDC_TOKEN_EXPIRED},
        {"expired within the skew", claims_with("exp", json_integer(NOW - 30)), OIDC_TOKEN_OK},
        {"no exp", claims_with("exp", NULL), OIDC_TOKEN_EXPIRED},
        {"exp as text", claims_with("exp", json_string("9999999999")), OIDC_TOKEN_EXPIRED},
        {"exp as a real number", claims_with("exp", json_real(NOW + 10.5)), OIDC_TOKEN_OK},
        {"iat ahead", claims_with("iat", json_integer(NOW + 120)), OIDC_TOKEN_NOT_YET},
        {"iat too old", claims_with("iat", json_integer(NOW - 700)), OIDC_TOKEN_TOO_OLD},
        {"no iat", claims_with("iat", NULL), OIDC_TOKEN_TOO_OLD},
        {"nbf ahead", claims_with("nbf", json_integer(NOW + 120)), OIDC_TOKEN_NOT_YET},
        {"other nonce", claims_with("nonce", json_string(NONCE "x")), OIDC_TOKEN_BAD_NONCE},
        {"no nonce", claims_with("nonce", NULL), OIDC_TOKEN_BAD_NONCE},
        {"empty sub", claims_with("sub", json_string("")), OIDC_TOKEN_NO_SUBJECT},
        {"no sub", claims_with("sub", NULL), OIDC_TOKEN_NO_SUBJECT},
    };
    cases[4].claims = claims_with("aud", json_pack("[s, s]", "x", "bic"));
    json_object_set_new(cases[4].claims, "azp", json_string("bic"));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        oidc_token_status st = check(sign(key1, head("k1"), cases[i].claims), jwks, NULL);
        if (st != cases[i].want)
            test_fail("%s: got %s, want %s", cases[i].name, oidc_token_status_name(st),
                      oidc_token_status_name(cases[i].want));
    }
    json_decref(jwks);
}

static void id_token_algorithm_and_key_are_checked(void **state)
{
    (void)state;
    json_t *jwks = json_pack("{s:[o]}", "keys", jwk_of(key1, "k1"));
    const char *kid;
    /* signed by another key under the published kid */
    assert_int_equal(check(sign(key2, head("k1"), claims_ok()), jwks, NULL),
                     OIDC_TOKEN_BAD_SIGNATURE);
    /* a kid the set lacks: the caller learns it, to fetch the set again */
    assert_int_equal(check(sign(key1, head("k9"), claims_ok()), jwks, &kid),
                     OIDC_TOKEN_UNKNOWN_KEY);
    assert_string_equal(kid, "k9");
    /* no kid: fine with exactly one RS256 key, refused with two */
    assert_int_equal(check(sign(key1, head(NULL), claims_ok()), jwks, &kid), OIDC_TOKEN_OK);
    assert_null(kid);
    json_t *two = json_pack("{s:[o, o]}", "keys", jwk_of(key1, "k1"), jwk_of(key2, "k2"));
    assert_int_equal(check(sign(key1, head(NULL), claims_ok()), two, NULL), OIDC_TOKEN_UNKNOWN_KEY);
    assert_int_equal(check(sign(key2, head("k2"), claims_ok()), two, NULL), OIDC_TOKEN_OK);
    json_decref(two);
    /* alg none, with or without a signature */
    assert_int_equal(check(sign(NULL, json_pack("{s:s}", "alg", "none"), claims_ok()), jwks, NULL),
                     OIDC_TOKEN_BAD_ALG);
    assert_int_equal(
        check(sign(key1, json_pack("{s:s, s:s}", "alg", "none", "kid", "k1"), claims_ok()), jwks,
              NULL),
        OIDC_TOKEN_BAD_ALG);
    /* HS256 keyed with the public key's n, the classic key-confusion attack */
    const char *in =
        arena_printf(A, "%s.%s", b64json(json_pack("{s:s, s:s}", "alg", "HS256", "kid", "k1")),
                     b64json(claims_ok()));
    const char *n = bn_b64(key1, OSSL_PKEY_PARAM_RSA_N);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), n, (int)strlen(n), (const unsigned char *)in, strlen(in), mac, &maclen);
    assert_int_equal(
        check(arena_printf(A, "%s.%s", in, oidc_b64url_encode(A, mac, maclen)), jwks, NULL),
        OIDC_TOKEN_BAD_ALG);
    /* other algorithms and spellings */
    const char *algs[] = {"RS512", "PS256", "ES256", "rs256", "RS256 "};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        assert_int_equal(
            check(sign(key1, json_pack("{s:s, s:s}", "alg", algs[i], "kid", "k1"), claims_ok()),
                  jwks, NULL),
            OIDC_TOKEN_BAD_ALG);
    /* a critical extension nobody here understands */
    assert_int_equal(
        check(sign(key1, json_pack("{s:s, s:s, s:[s]}", "alg", "RS256", "kid", "k1", "crit", "exp"),
                   claims_ok()),
              jwks, NULL),
        OIDC_TOKEN_MALFORMED);
    json_decref(jwks);
}

static void malformed_tokens_are_refused(void **state)
{
    (void)state;
    json_t *jwks = json_pack("{s:[o]}", "keys", jwk_of(key1, "k1"));
    const char *good = sign(key1, head("k1"), claims_ok());
    assert_int_equal(check(good, jwks, NULL), OIDC_TOKEN_OK);
    const char *dot = strrchr(good, '.');
    const char *bad[] = {
        "",
        "abc",
        "a.b",
        arena_printf(A, "%s.x", good),                     /* four parts */
        arena_printf(A, "%.*s.", (int)(dot - good), good), /* no signature */
        arena_printf(A, "e30.%s", strchr(good, '.') + 1),  /* header {} */
        arena_printf(A, "W10.%s", strchr(good, '.') + 1),  /* header [] */
        arena_printf(A, "%s=", good),                      /* padding */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        oidc_token_status st = check(bad[i], jwks, NULL);
        if (st != OIDC_TOKEN_MALFORMED && st != OIDC_TOKEN_BAD_ALG)
            test_fail("token %zu: %s", i, oidc_token_status_name(st));
    }
    /* a payload with a duplicate key (two nonces: which one is checked?) is refused */
    const char *h = b64json(head("k1"));
    const char *dup =
        "{\"iss\":\"https://idp.example\",\"aud\":\"bic\",\"sub\":\"s\",\"iat\":1700000000,"
        "\"exp\":1700000100,\"nonce\":\"evil\",\"nonce\":\"" NONCE "\"}";
    const char *in =
        arena_printf(A, "%s.%s", h, oidc_b64url_encode(A, (const unsigned char *)dup, strlen(dup)));
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key1);
    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)in, strlen(in));
    EVP_MD_CTX_free(md);
    assert_int_equal(
        check(arena_printf(A, "%s.%s", in, oidc_b64url_encode(A, sig, siglen)), jwks, NULL),
        OIDC_TOKEN_MALFORMED);
    /* too long to look at */
    char *huge = arena_alloc(A, OIDC_TOKEN_MAX + 2);
    memset(huge, 'a', OIDC_TOKEN_MAX + 1);
    assert_int_equal(check(huge, jwks, NULL), OIDC_TOKEN_MALFORMED);
    json_decref(jwks);
}

/* ---- discovery ---- */

static json_t *discovery_ok(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:[s], s:[s], s:[s, s]}", "issuer",
                     "https://idp.example", "authorization_endpoint",
                     "https://idp.example/authorize", "token_endpoint", "https://idp.example/token",
                     "jwks_uri", "https://idp.example/jwks", "response_types_supported", "code",
                     "code_challenge_methods_supported", "S256",
                     "id_token_signing_alg_values_supported", "RS256", "ES256");
}

static void discovery_document_checks(void **state)
{
    (void)state;
    json_t *d = discovery_ok();
    assert_null(oidc_discovery_problem(A, d, "https://idp.example"));
    assert_true(
        test_contains(oidc_discovery_problem(A, d, "https://idp.example/"), "trailing slash"));
    struct {
        const char *key;
        json_t *value;
        const char *part;
    } cases[] = {
        {"issuer", NULL, "does not name its issuer"},
        {"token_endpoint", json_string("http://idp.example/token"), "not an https://"},
        {"jwks_uri", NULL, "no jwks_uri"},
        {"response_types_supported", json_pack("[s]", "id_token"), "code flow"},
        {"code_challenge_methods_supported", json_pack("[s]", "plain"), "S256"},
        {"id_token_signing_alg_values_supported", json_pack("[s]", "HS256"), "RS256"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *c = discovery_ok();
        if (cases[i].value)
            json_object_set_new(c, cases[i].key, cases[i].value);
        else
            json_object_del(c, cases[i].key);
        const char *p = oidc_discovery_problem(A, c, "https://idp.example");
        if (!test_contains(p, cases[i].part)) test_fail("case %zu: %s", i, p ? p : "(none)");
        json_decref(c);
    }
    /* optional lists may be missing */
    json_object_del(d, "code_challenge_methods_supported");
    json_object_del(d, "response_types_supported");
    assert_null(oidc_discovery_problem(A, d, "https://idp.example"));
    json_decref(d);
}

int main(void)
{
    key1 = EVP_RSA_gen(2048);
    key2 = EVP_RSA_gen(2048);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64url_round_trips_and_refuses_other_spellings),
        cmocka_unit_test(pkce_matches_rfc7636_appendix_b),
        cmocka_unit_test(jwk_builds_the_same_public_key),
        cmocka_unit_test(jwk_refusals),
        cmocka_unit_test(rs256_verifies_rfc7515_appendix_a2),
        cmocka_unit_test(id_token_claims_are_checked),
        cmocka_unit_test(id_token_algorithm_and_key_are_checked),
        cmocka_unit_test(malformed_tokens_are_refused),
        cmocka_unit_test(discovery_document_checks),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    EVP_PKEY_free(key1);
    EVP_PKEY_free(key2);
    return rc;
}
