#include "totp.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <qrencode.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/* 31 characters: no 0/o, 1/i/l look-alikes */
static const char RECOVERY_ALPHABET[] = "23456789abcdefghjkmnpqrstuvwxyz";

static int fill_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got <= 0) return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

static const EVP_MD *md_of(totp_alg alg)
{
    switch (alg) {
    case TOTP_SHA1:
        return EVP_sha1();
    case TOTP_SHA256:
        return EVP_sha256();
    case TOTP_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

int totp_hotp(const unsigned char *key, size_t keylen, totp_alg alg, uint64_t counter, int digits,
              char *out)
{
    static const uint32_t pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
    const EVP_MD *md = md_of(alg);
    if (!md || digits < 6 || digits > 8) return -1;
    unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
    for (int i = 7; i >= 0; i--) {
        msg[i] = (unsigned char)(counter & 0xff);
        counter >>= 8;
    }
    unsigned int maclen = 0;
    if (!HMAC(md, key, (int)keylen, msg, sizeof(msg), mac, &maclen) || maclen < 20) return -1;
    unsigned off = mac[maclen - 1] & 0x0f;
    uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                   ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
    uint32_t v = bin % pow10[digits];
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    out[digits] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

int64_t totp_step(time_t now)
{
    return now < 0 ? 0 : (int64_t)(now / TOTP_PERIOD);
}

totp_result totp_check(const unsigned char secret[TOTP_SECRET_LEN], const char *code, time_t now,
                       int64_t last_step, int64_t *step)
{
    int64_t t = totp_step(now);
    int64_t fresh = -1;
    bool stale = false;
    if (strlen(code) != TOTP_DIGITS) return TOTP_NO_MATCH;
    /* every step of the window is computed and compared, so timing says nothing of which */
    for (int64_t s = t - TOTP_WINDOW; s <= t + TOTP_WINDOW; s++) {
        char want[TOTP_DIGITS + 1];
        if (s < 0 || totp_hotp(secret, TOTP_SECRET_LEN, TOTP_SHA1, (uint64_t)s, TOTP_DIGITS, want))
            continue;
        bool same = CRYPTO_memcmp(want, code, TOTP_DIGITS) == 0;
        OPENSSL_cleanse(want, sizeof(want));
        if (!same) continue;
        if (s <= last_step)
            stale = true;
        else if (fresh < 0)
            fresh = s;
    }
    if (fresh >= 0) {
        *step = fresh;
        return TOTP_MATCH;
    }
    return stale ? TOTP_REPLAYED : TOTP_NO_MATCH;
}

bool totp_code_normalize(const char *in, char out[TOTP_DIGITS + 1])
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '-') continue;
        if (!isdigit((unsigned char)*p) || n == TOTP_DIGITS) return false;
        out[n++] = *p;
    }
    out[n] = '\0';
    return n == TOTP_DIGITS;
}

size_t base32_encode(const unsigned char *in, size_t n, char *out, size_t outlen)
{
    size_t need = (n * 8 + 4) / 5;
    if (outlen < need + 1) return 0;
    size_t o = 0;
    unsigned buf = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        buf = (buf << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = B32[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) out[o++] = B32[(buf << (5 - bits)) & 31];
    out[o] = '\0';
    return o;
}

long base32_decode(const char *in, unsigned char *out, size_t outlen)
{
    size_t o = 0, nchars = 0;
    unsigned buf = 0;
    int bits = 0;
    bool padding = false;
    for (const char *p = in; *p; p++) {
        int c = toupper((unsigned char)*p);
        if (c == ' ' || c == '-') continue;
        if (c == '=') {
            padding = true;
            continue;
        }
        const char *at = c ? strchr(B32, c) : NULL;
        if (!at || padding) return -1; /* nothing but padding after padding */
        buf = (buf << 5) | (unsigned)(at - B32);
        bits += 5;
        nchars++;
        if (bits >= 8) {
            if (o == outlen) return -1;
            out[o++] = (unsigned char)(buf >> (bits - 8));
            bits -= 8;
        }
        buf &= 0xff;
    }
    /* an encoder leaves 0, 2, 4, 5 or 7 characters in the last group, and zero bits after */
    size_t rest = nchars % 8;
    if (rest == 1 || rest == 3 || rest == 6) return -1;
    if (bits > 0 && (buf & ((1u << bits) - 1)) != 0) return -1;
    return (long)o;
}

int totp_secret_new(unsigned char secret[TOTP_SECRET_LEN])
{
    return fill_random(secret, TOTP_SECRET_LEN);
}

/* RFC 3986 unreserved characters stay, everything else is %XX. In the arena. */
static char *pct(bic_arena *a, const char *s)
{
    char *out = arena_alloc(a, strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

char *totp_uri(bic_arena *a, const char *issuer, const char *account,
               const unsigned char secret[TOTP_SECRET_LEN])
{
    char b32[TOTP_B32_LEN + 1];
    base32_encode(secret, TOTP_SECRET_LEN, b32, sizeof(b32));
    const char *is = pct(a, issuer);
    char *uri = arena_printf(a,
                             "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=%d"
                             "&period=%d",
                             is, pct(a, account), b32, is, TOTP_DIGITS, TOTP_PERIOD);
    OPENSSL_cleanse(b32, sizeof(b32));
    return uri;
}

char *totp_qr_svg(bic_arena *a, const char *text)
{
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr) return NULL;
    int w = qr->width, quiet = 4, size = w + 2 * quiet;
    /* at most one "M x yhNv1h-Nz" run per module: bounded by 24 bytes a module */
    size_t cap = (size_t)w * (size_t)w * 24 + 512;
    char *svg = arena_alloc(a, cap), *o = svg;
    o += snprintf(o, cap,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\""
                  " height=\"%d\" shape-rendering=\"crispEdges\"><rect width=\"%d\" height=\"%d\""
                  " fill=\"#ffffff\"/><path fill=\"#000000\" d=\"",
                  size, size, size * 6, size * 6, size, size);
    for (int y = 0; y < w; y++) {
        for (int x = 0; x < w;) {
            if (!(qr->data[y * w + x] & 1)) {
                x++;
                continue;
            }
            int run = 1;
            while (x + run < w && (qr->data[y * w + x + run] & 1))
                run++;
            o += sprintf(o, "M%d %dh%dv1h-%dz", x + quiet, y + quiet, run, run);
            x += run;
        }
    }
    sprintf(o, "\"/></svg>");
    QRcode_free(qr);
    return svg;
}

int totp_recovery_new(char out[RECOVERY_CODE_LEN + RECOVERY_CODE_LEN / 4])
{
    const size_t n = sizeof(RECOVERY_ALPHABET) - 1;
    const unsigned limit = 256 - 256 % n; /* rejection keeps every character equally likely */
    size_t o = 0;
    for (int i = 0; i < RECOVERY_CODE_LEN;) {
        unsigned char r[32];
        if (fill_random(r, sizeof(r)) < 0) return -1;
        for (size_t k = 0; k < sizeof(r) && i < RECOVERY_CODE_LEN; k++) {
            if (r[k] >= limit) continue;
            if (i && i % 4 == 0) out[o++] = '-';
            out[o++] = RECOVERY_ALPHABET[r[k] % n];
            i++;
        }
        OPENSSL_cleanse(r, sizeof(r));
    }
    out[o] = '\0';
    return 0;
}

bool totp_recovery_normalize(const char *in, char out[RECOVERY_CODE_LEN + 1])
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '-') continue;
        int c = tolower((unsigned char)*p);
        if (!c || !strchr(RECOVERY_ALPHABET, c) || n == RECOVERY_CODE_LEN) return false;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return n == RECOVERY_CODE_LEN;
}
