#include "dir_ldap.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ldap.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct dir_conn {
    LDAP *ld;
    const char *url;
};

/* ---- text ---- */

char *dir_filter_escape(bic_arena *a, const char *v)
{
    char *out = arena_alloc(a, strlen(v) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        /* RFC 4515 3: '*', '(', ')', '\' and NUL must be escaped; controls are escaped too */
        if (*p == '*' || *p == '(' || *p == ')' || *p == '\\' || *p < 0x20 || *p == 0x7f)
            o += sprintf(o, "\\%02x", *p);
        else
            *o++ = (char)*p;
    }
    *o = '\0';
    return out;
}

char *dir_filter_expand(bic_arena *a, const char *tmpl, const char *name, const char *dn)
{
    const char *en = dir_filter_escape(a, name);
    const char *ed = dn ? dir_filter_escape(a, dn) : NULL;
    size_t nn = strlen(en), nd = ed ? strlen(ed) : 0, cap = strlen(tmpl) + 1;
    for (const char *p = tmpl; *p; p++)
        if (*p == '%' && p[1]) {
            cap += nn > nd ? nn : nd;
            p++;
        }
    char *out = arena_alloc(a, cap), *o = out;
    for (const char *p = tmpl; *p; p++) {
        if (*p != '%') {
            *o++ = *p;
            continue;
        }
        p++;
        if (*p == 's' || *p == 'u') {
            memcpy(o, en, nn);
            o += nn;
        } else if (*p == 'd' && ed) {
            memcpy(o, ed, nd);
            o += nd;
        } else if (*p == '%') {
            *o++ = '%';
        } else {
            return NULL;
        }
    }
    *o = '\0';
    return out;
}

const char *dir_filter_check(const char *t, dir_filter_kind kind)
{
    size_t n = strlen(t);
    if (n < 3 || t[0] != '(' || t[n - 1] != ')')
        return "a filter must be in parentheses, e.g. (objectClass=person)";
    int depth = 0;
    bool name = false, dn = false;
    for (const char *p = t; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) return "a filter may not hold control characters";
        if (c == '\\') {
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
                return "a backslash in a filter must start a hex escape such as \\2a";
            p += 2;
        } else if (c == '(') {
            depth++;
        } else if (c == ')') {
            if (--depth < 0) return "the filter's parentheses do not match";
            if (depth == 0 && p[1] == ')') return "the filter's parentheses do not match";
            if (depth == 0 && p[1])
                return "a filter must be one expression: combine several with (&...) or (|...)";
        } else if (c == '%') {
            char k = p[1];
            if (k == 's' || k == 'u')
                name = true;
            else if (k == 'd')
                dn = true;
            else if (k != '%')
                return "a filter knows only the placeholders %s or %u (user name), %d (user DN) "
                       "and %%";
            p++;
        }
    }
    if (depth != 0) return "the filter's parentheses do not match";
    switch (kind) {
    case DIR_FILTER_USER:
        if (dn) return "the user filter cannot use %d: the user's DN is what it finds";
        if (!name) return "the user filter must hold %s where the user name goes, e.g. (uid=%s)";
        break;
    case DIR_FILTER_GROUP:
        if (!name && !dn)
            return "the group filter must hold %d (the user's DN) or %u (the user name), e.g. "
                   "(member=%d)";
        break;
    case DIR_FILTER_PLAIN:
        if (name || dn)
            return "the disabled filter is checked against the user's own entry and takes no "
                   "placeholders";
        break;
    }
    return NULL;
}

char *dir_dn_norm(bic_arena *a, const char *dn)
{
    char *s = NULL, *out;
    if (ldap_dn_normalize(dn, LDAP_DN_FORMAT_LDAP, &s, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS &&
        s) {
        out = arena_strdup(a, s);
        ldap_memfree(s);
    } else {
        ldap_memfree(s);
        while (isspace((unsigned char)*dn))
            dn++;
        size_t n = strlen(dn);
        while (n && isspace((unsigned char)dn[n - 1]))
            n--;
        out = arena_strndup(a, dn, n);
    }
    /* attribute types and the usual matching rules of DN values ignore case */
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

size_t dir_url_list(bic_arena *a, const char *urls, const char **out, size_t max)
{
    size_t n = 0;
    for (const char *p = urls; *p;) {
        p += strspn(p, " ,\t");
        size_t len = strcspn(p, " ,\t");
        if (!len) break;
        if (n < max) out[n] = arena_strndup(a, p, len);
        n++;
        p += len;
    }
    return n;
}

const char *dir_url_check(bic_arena *a, const char *urls, bool starttls)
{
    const char *list[DIR_URLS_MAX];
    size_t n = dir_url_list(a, urls, list, DIR_URLS_MAX);
    if (n == 0) return "give at least one URL, e.g. ldaps://dc1.example.com";
    if (n > DIR_URLS_MAX)
        return arena_printf(a, "give at most %d URLs (servers of one directory)", DIR_URLS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (strncasecmp(list[i], "ldap://", 7) && strncasecmp(list[i], "ldaps://", 8))
            return arena_printf(a, "'%s': only ldap:// and ldaps:// URLs are supported", list[i]);
        LDAPURLDesc *lud = NULL;
        if (ldap_url_parse(list[i], &lud) != LDAP_URL_SUCCESS || !lud) {
            if (lud) ldap_free_urldesc(lud);
            return arena_printf(a, "'%s' is not an LDAP URL such as ldaps://dc1.example.com:636",
                                list[i]);
        }
        const char *why = NULL;
        bool ldaps = !strcasecmp(lud->lud_scheme, "ldaps");
        if (!lud->lud_host || !*lud->lud_host)
            why = "the URL names no server";
        else if ((lud->lud_dn && *lud->lud_dn) || lud->lud_attrs || lud->lud_filter ||
                 lud->lud_exts)
            why = "give only the scheme, the host and the port: the base DNs have their own fields";
        else if (ldaps && starttls)
            why = "StartTLS is for ldap:// URLs: an ldaps:// connection is encrypted already";
        ldap_free_urldesc(lud);
        if (why) return arena_printf(a, "'%s': %s", list[i], why);
    }
    return NULL;
}

bool dir_dn_ok(const char *dn)
{
    LDAPDN parsed = NULL;
    if (!dn || !*dn) return false;
    int rc = ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3);
    bool ok = rc == LDAP_SUCCESS && parsed != NULL;
    ldap_dnfree(parsed);
    return ok;
}

const char *dir_pem_normalize(bic_arena *a, const char *text, const char **why)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
    *why = NULL;
    if (strstr(text, "PRIVATE KEY")) {
        *why = "the text holds a private key: paste only the CA's certificate";
        return NULL;
    }
    size_t cap = strlen(text) * 2 + 64, used = 0;
    char *out = arena_alloc(a, cap);
    const char *p = text;
    int blocks = 0;
    while ((p = strstr(p, begin))) {
        p += sizeof(begin) - 1;
        const char *stop = strstr(p, end);
        if (!stop) {
            *why = "a certificate has no -----END CERTIFICATE----- line";
            return NULL;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s\n", begin);
        size_t col = 0;
        for (; p < stop; p++) {
            unsigned char c = (unsigned char)*p;
            if (isspace(c)) continue;
            if (!isalnum(c) && c != '+' && c != '/' && c != '=') {
                *why = "a certificate block holds characters that are not base64";
                return NULL;
            }
            out[used++] = (char)c;
            if (++col == 64) {
                out[used++] = '\n';
                col = 0;
            }
        }
        if (col) out[used++] = '\n';
        used += (size_t)snprintf(out + used, cap - used, "%s\n", end);
        p = stop + sizeof(end) - 1;
        blocks++;
    }
    if (!blocks) {
        *why = "ca_cert holds no certificate in PEM form (-----BEGIN CERTIFICATE----- ...)";
        return NULL;
    }
    out[used] = '\0';
    return out;
}

bool dir_attr_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    if (isdigit((unsigned char)s[0])) {
        for (const char *p = s; *p; p++)
            if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
                return false;
        return true;
    }
    if (!isalpha((unsigned char)s[0])) return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-') return false;
    return true;
}

static const char *asn1_iso(bic_arena *a, const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "";
    return arena_printf(a, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* RFC 2253 text of a name (arena). */
static const char *name_text(bic_arena *a, const X509_NAME *nm)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) return "";
    X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    const char *out = n > 0 ? arena_strndup(a, p, (size_t)n) : "";
    BIO_free(b);
    return out;
}

/* The certificates of PEM text into a new stack (caller frees), NULL when none. */
static STACK_OF(X509) * pem_certs(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    STACK_OF(X509) *sk = sk_X509_new_null();
    if (!b || !sk) {
        BIO_free(b);
        sk_X509_free(sk);
        return NULL;
    }
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        if (!sk_X509_push(sk, x)) X509_free(x);
    ERR_clear_error(); /* the read that ends the loop leaves "no start line" behind */
    BIO_free(b);
    if (sk_X509_num(sk) == 0) {
        sk_X509_free(sk);
        return NULL;
    }
    return sk;
}

const char *dir_ca_check(bic_arena *a, const char *pem, const char **subject,
                         const char **not_after)
{
    *subject = *not_after = NULL;
    if (strstr(pem, "PRIVATE KEY"))
        return "ca_cert holds a private key: paste only the CA's certificate";
    STACK_OF(X509) *sk = pem_certs(pem);
    if (!sk) return "ca_cert holds no certificate in PEM form (-----BEGIN CERTIFICATE----- ...)";
    X509 *first = sk_X509_value(sk, 0);
    *subject = name_text(a, X509_get_subject_name(first));
    *not_after = asn1_iso(a, X509_get0_notAfter(first));
    sk_X509_pop_free(sk, X509_free);
    return NULL;
}

static bool has(const char *s, const char *what)
{
    return s && strcasestr(s, what);
}

static bool is_down(int rc)
{
    return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
           rc == LDAP_TIMELIMIT_EXCEEDED || rc == LDAP_BUSY || rc == LDAP_UNAVAILABLE ||
           rc == LDAP_LOCAL_ERROR;
}

const char *dir_explain(bic_arena *a, const dir_config *d, const dir_fault *f)
{
    const char *url = f->url ? f->url : d->url, *step = f->step ? f->step : "";
    const char *diag = f->diag[0] ? f->diag : NULL;
    int rc = f->rc, t = d->timeout;
    bool tls_words = has(diag, "TLS") || has(diag, "certificate") || has(diag, "handshake");
    if (!strcmp(step, "connect")) {
        if (rc == LDAP_TIMEOUT)
            return arena_printf(a, "the server at %s did not answer within %d seconds", url, t);
        if (has(diag, "non-properly terminated") || has(diag, "unexpected TLS packet") ||
            has(diag, "unexpected length"))
            return arena_printf(a,
                                "the server at %s does not speak TLS on this port: for an "
                                "ldap:// port use ldap:// with StartTLS instead of ldaps://",
                                url);
        if (!strncasecmp(url, "ldaps://", 8) && rc == LDAP_SERVER_DOWN && diag)
            return arena_printf(a,
                                "the TLS connection to %s failed; most often the server's "
                                "certificate is not signed by the CA you gave, has expired, or "
                                "is for another host name (%s)",
                                url, diag);
        return arena_printf(a,
                            "cannot connect to %s: check the host name and port, and that no "
                            "firewall is in the way",
                            url);
    }
    if (!strcmp(step, "starttls")) {
        if (rc == LDAP_CONNECT_ERROR || tls_words)
            return arena_printf(a,
                                "StartTLS with %s failed in the TLS handshake; most often the "
                                "server's certificate is not signed by the CA you gave, has "
                                "expired, or is for another host name",
                                url);
        if (rc == LDAP_SERVER_DOWN)
            return arena_printf(a,
                                "%s closed the connection when StartTLS began: if it is an "
                                "ldaps:// port, use ldaps:// without StartTLS",
                                url);
        if (rc == LDAP_TIMEOUT)
            return arena_printf(a, "%s did not answer StartTLS within %d seconds", url, t);
        return arena_printf(a,
                            "the server at %s does not offer StartTLS (%s): give it a "
                            "certificate, or use ldaps://",
                            url, ldap_err2string(rc));
    }
    const char *what = !strcmp(step, "bind") ? "the bind DN" : "the search";
    switch (rc) {
    case LDAP_INVALID_CREDENTIALS:
        if (!strcmp(step, "bind"))
            return arena_printf(a, "the directory refused the bind DN '%s' or its password",
                                d->bind_dn);
        return "the directory refused the user's password";
    case LDAP_CONFIDENTIALITY_REQUIRED:
        return "the server accepts a bind only over an encrypted connection: turn StartTLS on or "
               "use ldaps://";
    case LDAP_INAPPROPRIATE_AUTH:
        return "the server refused this kind of bind: the bind DN needs a password";
    case LDAP_STRONG_AUTH_REQUIRED:
        return "the server wants a stronger bind than a password over this connection: turn "
               "StartTLS on or use ldaps://";
    case LDAP_INVALID_DN_SYNTAX:
        return arena_printf(a, "%s holds a DN the server cannot parse", what);
    case LDAP_NO_SUCH_OBJECT:
        return arena_printf(a,
                            "a base DN of the search does not exist on the server (user base "
                            "'%s'%s%s%s)",
                            d->user_base, *d->group_base ? ", group base '" : "", d->group_base,
                            *d->group_base ? "'" : "");
    case LDAP_INSUFFICIENT_ACCESS:
        return "the bind account may not read there: give it read access to the user and group "
               "bases";
    case LDAP_FILTER_ERROR:
    case LDAP_INAPPROPRIATE_MATCHING:
    case LDAP_UNDEFINED_TYPE:
        return "a filter is not valid for this server: check the user, group and disabled "
               "filters and the attribute names they use";
    case LDAP_SIZELIMIT_EXCEEDED:
        return "more than one entry matches the user filter for this name: make the filter "
               "match one entry per user";
    case LDAP_TIMEOUT:
    case LDAP_TIMELIMIT_EXCEEDED:
        return arena_printf(a, "the server did not answer %s within %d seconds", what, t);
    case LDAP_REFERRAL:
        return "the server answered with a referral to another server: point the URL at a server "
               "that holds the base DN (for Active Directory, a domain controller of that domain, "
               "or the global catalog on port 3268)";
    case LDAP_OPERATIONS_ERROR:
        if (has(diag, "successful bind must be completed"))
            return "the server refuses searches without a bind: give a bind DN and password";
        break;
    case LDAP_UNWILLING_TO_PERFORM:
        if (has(diag, "unauthenticated bind"))
            return "the server refuses a bind DN without a password: give the bind password";
        break;
    case LDAP_SERVER_DOWN:
    case LDAP_CONNECT_ERROR:
        return arena_printf(a, "the connection to %s was lost", url);
    default:
        break;
    }
    return arena_printf(a, "the server answered \"%s\" (LDAP code %d)%s%s", ldap_err2string(rc), rc,
                        diag ? ": " : "", diag ? diag : "");
}

/* ---- the network ---- */

static void fault_start(dir_fault *f, const char *step, const char *url)
{
    f->step = step;
    f->url = url;
    f->rc = LDAP_SUCCESS;
    f->diag[0] = '\0';
}

static void fault_set(dir_fault *f, LDAP *ld, int rc)
{
    f->rc = rc;
    f->diag[0] = '\0';
    char *m = NULL;
    if (ld && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &m) == LDAP_OPT_SUCCESS && m) {
        /* libldap's placeholder says nothing */
        if (strcmp(m, "(unknown error code)")) snprintf(f->diag, sizeof(f->diag), "%s", m);
        ldap_memfree(m);
    }
}

static void set_options(LDAP *ld, const dir_config *d)
{
    int v3 = LDAP_VERSION3;
    struct timeval tv = {d->timeout > 0 ? d->timeout : 5, 0};
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    /* a referral would send the service account's password to a server nobody configured */
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
}

/*
 * TLS settings of this handle only: the directory's CA (libldap reads CAs from a file, so the
 * PEM goes to a private temporary file that is removed once the context holds it), TLS 1.2 or
 * later, and the certificate demanded unless verify is false (dir_diagnose only).
 */
static int set_tls(LDAP *ld, const dir_config *d, bool verify)
{
    int req = verify ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
    int min = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, server = 0, rc;
    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &req);
    ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min);
    char path[512] = "";
    int fd = -1;
    if (verify && *d->ca_pem) {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof(path), "%s/bic-ldap-ca-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        fd = mkstemp(path);
        if (fd < 0) return LDAP_LOCAL_ERROR;
        size_t n = strlen(d->ca_pem), off = 0;
        while (off < n) {
            ssize_t w = write(fd, d->ca_pem + off, n - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        if (off != n) {
            unlink(path);
            close(fd);
            return LDAP_LOCAL_ERROR;
        }
        ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, path);
    }
    rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &server);
    if (fd >= 0) {
        unlink(path);
        close(fd);
    }
    return rc;
}

static dir_status classify(int rc)
{
    return is_down(rc) ? DIR_DOWN : DIR_BROKEN;
}

/* Connects to one server (and StartTLS), without binding. */
static dir_status open_url(const dir_config *d, const char *url, bool verify, LDAP **out,
                           dir_fault *f)
{
    *out = NULL;
    fault_start(f, "connect", url);
    LDAP *ld = NULL;
    int rc = ldap_initialize(&ld, url);
    if (rc != LDAP_SUCCESS || !ld) {
        f->rc = rc != LDAP_SUCCESS ? rc : LDAP_NO_MEMORY;
        return DIR_BROKEN;
    }
    set_options(ld, d);
    bool ldaps = !strncasecmp(url, "ldaps://", 8);
    if ((ldaps || d->starttls) && (rc = set_tls(ld, d, verify)) != LDAP_OPT_SUCCESS) {
        f->rc = rc;
        snprintf(f->diag, sizeof(f->diag), "cannot set up TLS (is the CA certificate readable?)");
        ldap_unbind_ext_s(ld, NULL, NULL);
        return DIR_BROKEN;
    }
    rc = ldap_connect(ld);
    if (rc != LDAP_SUCCESS) {
        fault_set(f, ld, rc);
        ldap_unbind_ext_s(ld, NULL, NULL);
        return DIR_DOWN;
    }
    if (d->starttls && !ldaps) {
        f->step = "starttls";
        rc = ldap_start_tls_s(ld, NULL, NULL);
        if (rc != LDAP_SUCCESS) {
            fault_set(f, ld, rc);
            ldap_unbind_ext_s(ld, NULL, NULL);
            return classify(rc);
        }
    }
    *out = ld;
    return DIR_OK;
}

static int simple_bind(LDAP *ld, const char *dn, const char *pw)
{
    struct berval cred = {strlen(pw), (char *)pw};
    return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

dir_status dir_connect_url(bic_arena *a, const dir_config *d, const char *url, dir_conn **out,
                           dir_fault *f)
{
    *out = NULL;
    LDAP *ld;
    url = arena_strdup(a, url);
    dir_status st = open_url(d, url, true, &ld, f);
    if (st != DIR_OK) return st;
    fault_start(f, "bind", url);
    if (*d->bind_dn) {
        int rc;
        if (!*d->bind_password) {
            /* an empty password would make this an unauthenticated bind (RFC 4513 5.1.2) */
            rc = LDAP_UNWILLING_TO_PERFORM;
            snprintf(f->diag, sizeof(f->diag), "unauthenticated bind (DN with no password)");
        } else {
            rc = simple_bind(ld, d->bind_dn, d->bind_password);
            if (rc != LDAP_SUCCESS) fault_set(f, ld, rc);
        }
        if (rc != LDAP_SUCCESS) {
            f->rc = rc;
            ldap_unbind_ext_s(ld, NULL, NULL);
            return classify(rc);
        }
    }
    dir_conn *c = arena_alloc(a, sizeof(*c));
    c->ld = ld;
    c->url = url;
    *out = c;
    return DIR_OK;
}

dir_status dir_connect(bic_arena *a, const dir_config *d, dir_conn **out, dir_fault *f)
{
    const char *list[DIR_URLS_MAX];
    size_t n = dir_url_list(a, d->url, list, DIR_URLS_MAX);
    if (n > DIR_URLS_MAX) n = DIR_URLS_MAX;
    dir_fault first = {0};
    fault_start(&first, "connect", d->url);
    first.rc = LDAP_PARAM_ERROR;
    for (size_t i = 0; i < n; i++) {
        dir_status st = dir_connect_url(a, d, list[i], out, f);
        if (st == DIR_OK || st == DIR_BROKEN) return st;
        if (i == 0) first = *f;
    }
    *f = first;
    return DIR_DOWN;
}

void dir_close(dir_conn *c)
{
    if (c && c->ld) ldap_unbind_ext_s(c->ld, NULL, NULL);
    if (c) c->ld = NULL;
}

const char *dir_conn_tls(bic_arena *a, dir_conn *c)
{
    char *ver = NULL, *cipher = NULL;
    ldap_get_option(c->ld, LDAP_OPT_X_TLS_VERSION, &ver);
    ldap_get_option(c->ld, LDAP_OPT_X_TLS_CIPHER, &cipher);
    const char *out =
        ver ? arena_printf(a, "%s%s%s", ver, cipher ? " " : "", cipher ? cipher : "") : "";
    ldap_memfree(ver);
    ldap_memfree(cipher);
    return out;
}

static struct timeval op_timeout(const dir_config *d)
{
    return (struct timeval){d->timeout > 0 ? d->timeout : 5, 0};
}

dir_status dir_check_base(dir_conn *c, bic_arena *a, const char *base, dir_fault *f)
{
    (void)a;
    fault_start(f, "search", c->url);
    char *attrs[] = {LDAP_NO_ATTRS, NULL};
    LDAPMessage *res = NULL;
    struct timeval tv = {5, 0};
    int rc = ldap_search_ext_s(c->ld, base, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL,
                               NULL, &tv, 1, &res);
    int n = rc == LDAP_SUCCESS ? ldap_count_entries(c->ld, res) : 0;
    ldap_msgfree(res);
    if (rc == LDAP_SUCCESS && n == 1) return DIR_OK;
    fault_set(f, c->ld, rc == LDAP_SUCCESS ? LDAP_NO_SUCH_OBJECT : rc);
    if (rc == LDAP_SUCCESS) f->rc = LDAP_NO_SUCH_OBJECT; /* hidden by access control */
    return classify(f->rc);
}

/* The first value of attr in entry e (arena), "" when absent or not valid text. */
static const char *first_value(bic_arena *a, LDAP *ld, LDAPMessage *e, const char *attr)
{
    if (!attr || !*attr) return "";
    struct berval **v = ldap_get_values_len(ld, e, attr);
    const char *out = "";
    if (v && v[0] && v[0]->bv_len && !memchr(v[0]->bv_val, '\0', v[0]->bv_len))
        out = arena_strndup(a, v[0]->bv_val, v[0]->bv_len);
    ldap_value_free_len(v);
    return out;
}

/* Appends the DNs of groups to out (growing arena array). */
static void add_group(bic_arena *a, dir_entry *out, size_t *cap, const char *dn)
{
    if (out->ngroups >= DIR_GROUPS_MAX) return;
    if (out->ngroups == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        const char **g = arena_alloc(a, ncap * sizeof(*g));
        if (out->ngroups) memcpy(g, out->groups, out->ngroups * sizeof(*g));
        out->groups = g;
        *cap = ncap;
    }
    out->groups[out->ngroups++] = dn;
}

dir_status dir_find_user(dir_conn *c, bic_arena *a, const dir_config *d, const char *name,
                         dir_entry *out, bool *ambiguous, dir_fault *f)
{
    memset(out, 0, sizeof(*out));
    *ambiguous = false;
    fault_start(f, "user", c->url);
    const char *filter = dir_filter_expand(a, d->user_filter, name, NULL);
    if (!filter) {
        f->rc = LDAP_FILTER_ERROR;
        return DIR_BROKEN;
    }
    char *attrs[6] = {(char *)d->attr_username, (char *)"userAccountControl", NULL};
    size_t na = 2;
    const char *more[] = {d->attr_display_name, d->attr_email, d->attr_member_of};
    for (size_t i = 0; i < 3; i++)
        if (*more[i]) attrs[na++] = (char *)more[i];
    attrs[na] = NULL;
    struct timeval tv = op_timeout(d);
    LDAPMessage *res = NULL;
    /* a size limit of 2 is enough to know that the name is not unique */
    int rc = ldap_search_ext_s(c->ld, d->user_base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL,
                               NULL, &tv, 2, &res);
    int n = res ? ldap_count_entries(c->ld, res) : 0;
    if (rc == LDAP_SIZELIMIT_EXCEEDED || n > 1) {
        ldap_msgfree(res);
        *ambiguous = true;
        return DIR_NO_USER;
    }
    if (rc != LDAP_SUCCESS) {
        fault_set(f, c->ld, rc);
        ldap_msgfree(res);
        return classify(rc);
    }
    if (n == 0) {
        ldap_msgfree(res);
        return DIR_NO_USER;
    }
    LDAPMessage *e = ldap_first_entry(c->ld, res);
    char *dn = ldap_get_dn(c->ld, e);
    out->dn = arena_strdup(a, dn ? dn : "");
    ldap_memfree(dn);
    out->username = first_value(a, c->ld, e, d->attr_username);
    out->display_name = first_value(a, c->ld, e, d->attr_display_name);
    out->email = first_value(a, c->ld, e, d->attr_email);
    /* Active Directory: userAccountControl bit 2 is ACCOUNTDISABLE */
    const char *uac = first_value(a, c->ld, e, "userAccountControl");
    if (*uac && (strtoll(uac, NULL, 10) & 2)) out->disabled = true;
    size_t cap = 0;
    if (*d->attr_member_of) {
        struct berval **v = ldap_get_values_len(c->ld, e, d->attr_member_of);
        for (size_t i = 0; v && v[i]; i++)
            if (v[i]->bv_len && !memchr(v[i]->bv_val, '\0', v[i]->bv_len))
                add_group(a, out, &cap, arena_strndup(a, v[i]->bv_val, v[i]->bv_len));
        ldap_value_free_len(v);
    }
    ldap_msgfree(res);
    char *none[] = {LDAP_NO_ATTRS, NULL};
    if (!out->disabled && *d->disabled_filter) {
        res = NULL;
        rc = ldap_search_ext_s(c->ld, out->dn, LDAP_SCOPE_BASE, d->disabled_filter, none, 0, NULL,
                               NULL, &tv, 1, &res);
        if (rc != LDAP_SUCCESS) {
            fault_set(f, c->ld, rc);
            ldap_msgfree(res);
            return classify(rc);
        }
        if (ldap_count_entries(c->ld, res) > 0) out->disabled = true;
        ldap_msgfree(res);
    }
    if (*d->group_base && *d->group_filter) {
        const char *gf =
            dir_filter_expand(a, d->group_filter, *out->username ? out->username : name, out->dn);
        if (!gf) {
            f->rc = LDAP_FILTER_ERROR;
            return DIR_BROKEN;
        }
        res = NULL;
        rc = ldap_search_ext_s(c->ld, d->group_base, LDAP_SCOPE_SUBTREE, gf, none, 0, NULL, NULL,
                               &tv, DIR_GROUPS_MAX, &res);
        if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
            fault_set(f, c->ld, rc);
            ldap_msgfree(res);
            return classify(rc);
        }
        for (LDAPMessage *g = ldap_first_entry(c->ld, res); g; g = ldap_next_entry(c->ld, g)) {
            char *gdn = ldap_get_dn(c->ld, g);
            if (gdn) add_group(a, out, &cap, arena_strdup(a, gdn));
            ldap_memfree(gdn);
        }
        ldap_msgfree(res);
    }
    return DIR_OK;
}

dir_status dir_bind_user(dir_conn *c, const char *dn, const char *password, dir_fault *f)
{
    fault_start(f, "user_bind", c ? c->url : NULL);
    if (!password || !*password || !dn || !*dn || !c) {
        f->rc = LDAP_INVALID_CREDENTIALS;
        snprintf(f->diag, sizeof(f->diag), "an empty password is never sent");
        return DIR_BAD_PASSWORD;
    }
    int rc = simple_bind(c->ld, dn, password);
    if (rc == LDAP_SUCCESS) return DIR_OK;
    fault_set(f, c->ld, rc);
    return is_down(rc) ? DIR_DOWN : DIR_BAD_PASSWORD;
}

/* ---- looking closer at a failed connection ---- */

/* TCP connect to host:port within timeout seconds: NULL when something listens, else words. */
static const char *tcp_probe(bic_arena *a, const char *host, int port, int timeout)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc != 0)
        return arena_printf(a, "the host name '%s' cannot be resolved (%s): check the URL and DNS",
                            host, gai_strerror(rc));
    const char *why = NULL;
    for (struct addrinfo *p = ai; p; p = p->ai_next) {
        int fd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int err = 0;
        if (connect(fd, p->ai_addr, p->ai_addrlen) < 0) {
            err = errno;
            if (err == EINPROGRESS) {
                struct pollfd pfd = {fd, POLLOUT, 0};
                int r = poll(&pfd, 1, timeout * 1000);
                socklen_t len = sizeof(err);
                if (r == 0)
                    err = ETIMEDOUT;
                else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                    err = errno;
            }
        }
        close(fd);
        if (err == 0) {
            why = NULL;
            break;
        }
        if (err == ECONNREFUSED)
            why = arena_printf(a, "nothing listens on port %d of %s (connection refused)", port,
                               host);
        else if (err == ETIMEDOUT)
            why = arena_printf(a,
                               "%s does not answer on port %d within %d seconds: the host is "
                               "down or a firewall drops the connection",
                               host, port, timeout);
        else
            why = arena_printf(a, "cannot reach port %d of %s: %s", port, host, strerror(err));
    }
    freeaddrinfo(ai);
    return why;
}

/* The names a certificate is for (DNS and IP subject alternative names), comma separated. */
static const char *cert_names(bic_arena *a, X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    const char *out = "";
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const char *s = NULL;
        if (g->type == GEN_DNS) {
            s = arena_strndup(a, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                              (size_t)ASN1_STRING_length(g->d.dNSName));
        } else if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 4) {
            const unsigned char *ip = ASN1_STRING_get0_data(g->d.iPAddress);
            s = arena_printf(a, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
        } else if (g->type == GEN_IPADD) {
            s = "an IPv6 address";
        }
        if (s) out = *out ? arena_printf(a, "%s, %s", out, s) : s;
    }
    GENERAL_NAMES_free(gens);
    if (!*out) out = arena_printf(a, "%s", name_text(a, X509_get_subject_name(x)));
    return out;
}

/* Checks the server's certificate (DER) the way the TLS handshake should have: words or NULL. */
static const char *check_peer(bic_arena *a, const dir_config *d, const char *host,
                              const unsigned char *der, long n)
{
    X509 *x = d2i_X509(NULL, &der, n);
    if (!x) return NULL;
    const char *why = NULL;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *cas = *d->ca_pem ? pem_certs(d->ca_pem) : NULL;
    if (!store || !ctx) goto out;
    if (cas)
        for (int i = 0; i < sk_X509_num(cas); i++)
            X509_STORE_add_cert(store, sk_X509_value(cas, i));
    else
        X509_STORE_set_default_paths(store);
    if (X509_STORE_CTX_init(ctx, store, x, NULL) != 1) goto out;
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        const char *issuer = name_text(a, X509_get_issuer_name(x));
        switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            why = arena_printf(a, "the server's certificate expired on %s",
                               asn1_iso(a, X509_get0_notAfter(x)));
            break;
        case X509_V_ERR_CERT_NOT_YET_VALID:
            why = arena_printf(a,
                               "the server's certificate is valid only from %s: check the clocks "
                               "of this machine and the server",
                               asn1_iso(a, X509_get0_notBefore(x)));
            break;
        default:
            if (cas)
                why = arena_printf(a,
                                   "the server's certificate is not signed by the CA you gave "
                                   "(it was issued by \"%s\"; the CA you gave is \"%s\")",
                                   issuer,
                                   name_text(a, X509_get_subject_name(sk_X509_value(cas, 0))));
            else
                why = arena_printf(a,
                                   "the server's certificate (issued by \"%s\") is not signed by "
                                   "a CA this machine trusts: paste the directory's CA "
                                   "certificate",
                                   issuer);
        }
        goto out;
    }
    bool ip = strspn(host, "0123456789.") == strlen(host) || strchr(host, ':');
    int match = ip ? X509_check_ip_asc(x, host, 0) : X509_check_host(x, host, 0, 0, NULL);
    if (match != 1)
        why = arena_printf(a,
                           "the server's certificate is for %s, not for '%s' as the URL says: "
                           "use a name the certificate holds",
                           cert_names(a, x), host);
out:
    sk_X509_pop_free(cas, X509_free);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(x);
    return why;
}

const char *dir_diagnose(bic_arena *a, const dir_config *d, const dir_fault *f)
{
    if (!f->url || !f->step || (strcmp(f->step, "connect") && strcmp(f->step, "starttls")))
        return NULL;
    LDAPURLDesc *lud = NULL;
    if (ldap_url_parse(f->url, &lud) != LDAP_URL_SUCCESS || !lud || !lud->lud_host) {
        if (lud) ldap_free_urldesc(lud);
        return NULL;
    }
    bool ldaps = !strcasecmp(lud->lud_scheme, "ldaps");
    int port = lud->lud_port ? lud->lud_port : ldaps ? 636 : 389;
    const char *host = arena_strdup(a, lud->lud_host);
    ldap_free_urldesc(lud);
    const char *why = tcp_probe(a, host, port, d->timeout > 0 ? d->timeout : 5);
    if (why || !(ldaps || d->starttls)) return why;
    /* the same handshake again without checking the certificate, to look at it ourselves */
    LDAP *ld = NULL;
    dir_fault f2;
    if (open_url(d, f->url, false, &ld, &f2) != DIR_OK) {
        if (!strcmp(f2.step, "connect") && ldaps)
            return arena_printf(a,
                                "no TLS handshake is possible with %s: if it is an ldap:// port, "
                                "use ldap:// with StartTLS",
                                f->url);
        return NULL;
    }
    struct berval bv = {0};
    if (ldap_get_option(ld, LDAP_OPT_X_TLS_PEERCERT, &bv) == LDAP_OPT_SUCCESS && bv.bv_val)
        why = check_peer(a, d, host, (const unsigned char *)bv.bv_val, (long)bv.bv_len);
    ldap_memfree(bv.bv_val);
    ldap_unbind_ext_s(ld, NULL, NULL);
    return why;
}
