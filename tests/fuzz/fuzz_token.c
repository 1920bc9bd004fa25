/*
 * fuzz_token - the session token (token_verify: libjwt decoding plus bicd's own checks of
 * algorithm, exp, nbf, iss, aud, sub and sid) and the console ticket as nginx's console
 * check hands it to bicd (dispatch of /_bic/console-check with BIC_CONSOLE_TICKET, the
 * session cookie and the Origin: h_console_check and the refusal headers nginx answers with).
 *
 * Input, by its first byte:
 *   't'  the rest is a token, verified as it is;
 *   's'  the rest is "<header JSON>\n<payload JSON>": the target signs it with bicd's key
 *        (HS256), so the claim checks are reached with any header and claims;
 *   'r'  16 bytes: user id, session id and ttl for token_issue(), whose token must verify
 *        back to the same claims;
 *   'c'  the rest is "<ticket>\n<cookie header>\n<origin>": the console check;
 *   else the whole input is a token.
 * Aborts (besides ASan/UBSan) when a token verifies that bicd did not sign or that breaks
 * its rules (alg, exp <= now, nbf > now, iss, aud, ids <= 0), when an issued token does not
 * verify to its claims, and when the console check lets anything in (the database is down
 * here, so no ticket can be valid) or answers with a header holding CR or LF.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "fuzz_bicd.h"
#include "fuzz_common.h"
#include "routes.h"

static char *b64url(const unsigned char *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *c = out; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    return out;
}

/* True when the signature segment of tok is bicd's HS256 MAC of what precedes it. */
static int ours(const char *tok)
{
    const char *dot = strrchr(tok, '.');
    if (!dot) return 0;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), FZ_TOKEN_KEY, (int)strlen(FZ_TOKEN_KEY), (const unsigned char *)tok,
         (size_t)(dot - tok), mac, &maclen);
    char *s = b64url(mac, maclen);
    /* the last character carries 4 bits the MAC does not use */
    int same = strlen(dot + 1) >= 42 && !strncmp(dot + 1, s, 42);
    free(s);
    return same;
}

static void verify_checked(const char *tok, int signed_by_us)
{
    bic_token_claims c;
    memset(&c, 0, sizeof(c));
    bic_token_status st = token_verify(tok, FZ_NOW, &c);
    if ((unsigned)st > TOKEN_BAD_CLAIMS) abort();
    if (strcmp(token_status_name(st), "?") == 0) abort();
    if (st != TOKEN_OK) return;
    if (!signed_by_us && !ours(tok)) abort(); /* verified, but bicd's key did not sign it */
    if (c.user_id <= 0 || c.session_id <= 0 || c.exp <= FZ_NOW) abort();
}

static void signed_claims(const fz_input *in)
{
    const char *hdr = in->field[0], *payload = in->rest;
    char *h = b64url((const unsigned char *)hdr, strlen(hdr));
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *msg = malloc(n);
    snprintf(msg, n, "%s.%s", h, p);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), FZ_TOKEN_KEY, (int)strlen(FZ_TOKEN_KEY), (const unsigned char *)msg,
         strlen(msg), mac, &maclen);
    char *s = b64url(mac, maclen);
    size_t tn = strlen(msg) + strlen(s) + 2;
    char *tok = malloc(tn);
    snprintf(tok, tn, "%s.%s", msg, s);
    verify_checked(tok, 1);
    free(tok);
    free(s);
    free(msg);
    free(p);
    free(h);
}

static void round_trip(const uint8_t *d, size_t n)
{
    if (n < 16) return;
    long long uid = 0, sid = 0;
    memcpy(&uid, d, 6);
    memcpy(&sid, d + 6, 6);
    long ttl = (long)(d[12] | d[13] << 8) + 1;
    uid &= 0x7fffffffffffLL;
    sid &= 0x7fffffffLL; /* a "sid" grant is a long in libjwt; sessions ids are far below */
    if (uid <= 0 || sid <= 0) return;
    char *tok = token_issue(uid, sid, ttl, FZ_NOW);
    if (!tok) abort();
    bic_token_claims c;
    if (token_verify(tok, FZ_NOW, &c) != TOKEN_OK) abort();
    if (c.user_id != uid || c.session_id != sid || c.exp != FZ_NOW + ttl) abort();
    if (token_verify(tok, FZ_NOW + ttl, &c) != TOKEN_EXPIRED) abort();
    tok[strlen(tok) - 2] ^= 0x01; /* any other signature */
    verify_checked(tok, 0);
    free(tok);
}

static void console_check(const fz_input *in)
{
    bic_arena *a = arena_new(0);
    bic_req req;
    bic_resp resp;
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    req.arena = a;
    req.db = fz_db;
    req.cfg = &fz_cfg;
    req.method_str = "GET";
    req.path = "/_bic/console-check"; /* nginx's fixed DOCUMENT_URI */
    req.console_ticket = in->field[0][0] ? in->field[0] : NULL;
    req.cookie = fz_opt(in, 1);
    req.origin = in->rest_len ? in->rest : NULL;
    req.host = FZ_HOST;
    req.remote_addr = "127.0.0.1";
    req.content_length = -1;
    snprintf(req.request_id, sizeof(req.request_id), "fuzz-console-0001");
    dispatch(&req, &resp);
    if (resp.status == 204 || resp.status < 200 || resp.status >= 600) abort();
    if (req.console_ticket && resp.status != 403) abort(); /* nginx only passes 401/403 */
    for (size_t i = 0; i < resp.nheaders; i++) {
        if (strpbrk(resp.header[i], "\r\n")) abort();
        if (!strncmp(resp.header[i], "X-BIC-Console-Target", 20)) abort();
    }
    arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_bicd_init();
    if (size == 0) return 0;
    fz_input in;
    switch (data[0]) {
    case 's':
        fz_split(&in, data + 1, size - 1, 1);
        signed_claims(&in);
        fz_free(&in);
        break;
    case 'r':
        round_trip(data + 1, size - 1);
        break;
    case 'c':
        fz_split(&in, data + 1, size - 1, 2);
        console_check(&in);
        fz_free(&in);
        break;
    default: {
        size_t skip = data[0] == 't';
        char *tok = malloc(size - skip + 1);
        memcpy(tok, data + skip, size - skip);
        tok[size - skip] = '\0';
        verify_checked(tok, 0);
        free(tok);
    }
    }
    return 0;
}
