#include "agentauth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

static const char *bearer(const char *h)
{
    if (!h || strncasecmp(h, "Bearer ", 7)) return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

bic_err agent_identify(bic_req *req)
{
    const char *b = bearer(req->authorization);
    const char *dot = b ? strchr(b, '.') : NULL;
    if (!dot) return fail(req, BIC_E_UNAUTHENTICATED, "agent credential missing");
    char *end;
    errno = 0;
    long long id = strtoll(b, &end, 10);
    if (errno || end != dot || id <= 0 || strlen(dot + 1) != RANDOM_TOKEN_LEN)
        return fail(req, BIC_E_UNAUTHENTICATED, "malformed agent credential");
    bic_rows rows;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_server_credential, &rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "credential lookup failed");
    unsigned char h[32];
    sha256_bytes(dot + 1, h);
    if (rows.nrows != 1 || rows.len[0] != 32 || CRYPTO_memcmp(rows_str(&rows, 0, 0), h, 32))
        return fail(req, BIC_E_UNAUTHENTICATED, "unknown agent credential");
    req->who.server_id = id;
    return BIC_E_OK;
}

static bool in_cidr(const char *cidr, size_t n, const char *addr)
{
    char net[64];
    if (n >= sizeof(net)) return false;
    memcpy(net, cidr, n);
    net[n] = '\0';
    int bits = -1;
    char *slash = strchr(net, '/');
    if (slash) {
        *slash = '\0';
        char *end;
        errno = 0;
        long b = strtol(slash + 1, &end, 10);
        if (errno || end == slash + 1 || *end || b < 0)
            return false; /* malformed: matches nothing */
        bits = (int)b;
    }
    unsigned char a[16], b[16];
    int fam = strchr(net, ':') ? AF_INET6 : AF_INET;
    int len = fam == AF_INET6 ? 16 : 4;
    if (bits < 0) bits = len * 8;
    if (bits > len * 8 || inet_pton(fam, net, a) != 1 || inet_pton(fam, addr, b) != 1) return false;
    for (int i = 0; i < len && bits > 0; i++, bits -= 8) {
        unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
        if ((a[i] & mask) != (b[i] & mask)) return false;
    }
    return true;
}

bool cidr_list_contains(const char *list, const char *addr)
{
    if (!list || !addr) return false;
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n && in_cidr(p, n, addr)) return true;
        p += n;
    }
    return false;
}

bic_err metrics_authorize(bic_req *req)
{
    const char *tok = req->cfg->metrics_token;
    const char *b = bearer(req->authorization);
    if (tok && *tok && b && strlen(b) == strlen(tok) && CRYPTO_memcmp(b, tok, strlen(tok)) == 0)
        return BIC_E_OK;
    if (cidr_list_contains(req->cfg->metrics_networks, req->remote_addr)) return BIC_E_OK;
    return fail(req, BIC_E_UNAUTHENTICATED,
                "metrics need the metrics token or a management network address");
}
