/*
 * dir_ldap.h - talking to an LDAP directory (OpenLDAP's libldap): connections over StartTLS or
 * LDAPS that trust the directory's own CA, RFC 4515 filter escaping, DN comparison, finding a
 * user with his attributes, disabled state and groups, binding as him, failures explained in
 * plain words, and the service account's password sealed at rest. No database and no request:
 * fcgi/directory.c does those. Design: docs/directories.md.
 */
#ifndef BIC_DIR_LDAP_H
#define BIC_DIR_LDAP_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

#define DIR_TIMEOUT_MAX   60  /* seconds: network and per operation */
#define DIR_PASSWORD_MAX  256 /* bytes of the service account's password */
#define DIR_URLS_MAX      8    /* servers of one directory */
#define DIR_GROUPS_MAX    1000 /* group DNs read for one user */

/* A directory's settings. Strings are borrowed and never NULL ("" when unset). */
typedef struct {
    long long id;
    const char *name;
    const char *url;           /* ldap:// or ldaps:// URLs separated by spaces, tried in order */
    bool starttls;             /* StartTLS on ldap:// URLs */
    const char *ca_pem;        /* CA certificates (PEM); "" trusts the system's CAs */
    const char *bind_dn;       /* the service account; "" searches anonymously */
    const char *bind_password; /* in clear, only in memory */
    const char *user_base, *user_filter;
    const char *group_base, *group_filter; /* "" and "": no group search */
    const char *disabled_filter;           /* "": none; AD's userAccountControl bit 2 always */
    const char *attr_username, *attr_display_name, *attr_email, *attr_member_of;
    int timeout; /* seconds */
} dir_config;

typedef enum {
    DIR_OK,
    DIR_NO_USER,      /* the user filter matched no entry, or more than one */
    DIR_BAD_PASSWORD, /* the directory refused the user's password (or it was empty) */
    DIR_DOWN,         /* no server answered, TLS failed, or a timeout */
    DIR_BROKEN,       /* a server answered but the settings do not work (bind DN, base, filter) */
} dir_status;

/* Where a failure happened: the step ("connect", "starttls", "bind", "search", "user"; static
 * storage), the server, libldap's result code and diagnostic message. */
typedef struct {
    const char *step;
    const char *url; /* arena, or NULL */
    int rc;
    char diag[256];
} dir_fault;

/* One user as the directory describes him. Strings in the arena, "" when absent. */
typedef struct {
    const char *dn;
    const char *username; /* the value of attr_username: the BIC user name */
    const char *display_name, *email;
    bool disabled;       /* userAccountControl bit 2, or the entry matches disabled_filter */
    const char **groups; /* group DNs: attr_member_of values and the group search's entries */
    size_t ngroups;
} dir_entry;

typedef struct dir_conn dir_conn;

/* ---- text: no network ---- */

/* value with RFC 4515's escapes (\2a \28 \29 \5c \00) for use inside a filter. Arena. */
char *dir_filter_escape(bic_arena *a, const char *value);
/*
 * Expands a filter template: %s and %u become the escaped user name, %d the escaped user DN
 * (only when dn is not NULL), %% a percent sign. Arena; NULL when the template holds any other
 * % sequence, or %d without a dn.
 */
char *dir_filter_expand(bic_arena *a, const char *tmpl, const char *name, const char *dn);
/* What a filter template is for, and so which placeholders it needs. */
typedef enum {
    DIR_FILTER_USER,  /* finds one user: needs %s or %u, never %d */
    DIR_FILTER_GROUP, /* finds a user's groups: needs %d or %u (or %s) */
    DIR_FILTER_PLAIN, /* the disabled filter, matched against the user's entry: no placeholder */
} dir_filter_kind;
/*
 * Checks a filter template before it is stored: parenthesised, one balanced expression, no
 * control character, backslashes only in hex escapes, only the placeholders above and those
 * kind needs. NULL when good, else a sentence for the client (static storage).
 */
const char *dir_filter_check(const char *tmpl, dir_filter_kind kind);
/* A DN in the form compared with group mappings: LDAPv3 string form (RFC 4514), lower case.
 * Arena; a DN libldap cannot parse is only trimmed and lower-cased. */
char *dir_dn_norm(bic_arena *a, const char *dn);
/* Checks a URL list: 1..DIR_URLS_MAX ldap:// or ldaps:// URLs with a host and nothing after
 * the port; StartTLS only with ldap://. NULL when good, else a sentence (arena). */
const char *dir_url_check(bic_arena *a, const char *urls, bool starttls);
/* The URLs of a list (spaces or commas between them) into out, at most max (arena copies);
 * returns how many the list holds, which may be more than max. */
size_t dir_url_list(bic_arena *a, const char *urls, const char **out, size_t max);
/* Whether dn parses as a DN (RFC 4514) and is not empty. */
bool dir_dn_ok(const char *dn);
/*
 * The certificates of PEM text in canonical form: each CERTIFICATE block re-wrapped at 64
 * characters, whatever whitespace (spaces, line breaks) the text had inside and between
 * blocks, so a certificate pasted without its line breaks works too. Text outside the blocks
 * is dropped. Arena; NULL with *why (static) when there is no certificate block, a block is
 * not base64, or the text holds a private key.
 */
const char *dir_pem_normalize(bic_arena *a, const char *text, const char **why);
/* Whether s is an attribute description BIC asks for: a letter then letters, digits and '-',
 * or a numeric OID; at most 64 bytes. */
bool dir_attr_ok(const char *s);
/* Checks PEM text of CA certificates: at least one certificate and nothing else unreadable.
 * NULL when good (with the first certificate's subject and expiry, ISO 8601, in the arena),
 * else a sentence (static storage). */
const char *dir_ca_check(bic_arena *a, const char *pem, const char **subject,
                         const char **not_after);
/* The failure f in plain words for an administrator (arena). Uses only f and d: see
 * dir_diagnose for the explanations that need the network. */
const char *dir_explain(bic_arena *a, const dir_config *d, const dir_fault *f);

/* ---- the network ---- */

/*
 * Connects to the servers of d in order and binds as the service account: *out gets the first
 * connection that works (close it with dir_close). DIR_OK, DIR_DOWN (no server could be
 * reached or TLS failed: f names the first server's failure) or DIR_BROKEN (the service bind
 * was refused).
 */
dir_status dir_connect(bic_arena *a, const dir_config *d, dir_conn **out, dir_fault *f);
/* The same with one server of the list (the test-connection action checks each). */
dir_status dir_connect_url(bic_arena *a, const dir_config *d, const char *url, dir_conn **out,
                           dir_fault *f);
void dir_close(dir_conn *c);
/* "TLS1.3 / cipher" of the connection, or "" without TLS. Arena. */
const char *dir_conn_tls(bic_arena *a, dir_conn *c);
/* Searches base (scope base, no attributes) to prove it exists and may be read. DIR_OK or
 * DIR_BROKEN/DIR_DOWN with f (step "search"). */
dir_status dir_check_base(dir_conn *c, bic_arena *a, const char *base, dir_fault *f);
/*
 * Finds the user whose name is name with d's user filter (name escaped), then his disabled
 * state and groups. DIR_OK with *out, DIR_NO_USER (nobody, or more than one entry: *ambiguous
 * says which), or DIR_DOWN/DIR_BROKEN with f (step "user").
 */
dir_status dir_find_user(dir_conn *c, bic_arena *a, const dir_config *d, const char *name,
                         dir_entry *out, bool *ambiguous, dir_fault *f);
/* Binds as dn with password (c is then bound as that user). An empty password is refused
 * without asking the server (it would be an unauthenticated bind, RFC 4513 5.1.2). DIR_OK,
 * DIR_BAD_PASSWORD (f says what the server answered), or DIR_DOWN. */
dir_status dir_bind_user(dir_conn *c, const char *dn, const char *password, dir_fault *f);
/*
 * Looks closer at a failed connect or StartTLS of f->url: the host name, whether anything
 * listens, and when TLS failed, the server's certificate checked against d's CA (expired, for
 * another host name, not signed by that CA). A sentence (arena), or NULL when there is nothing
 * more to say than dir_explain does.
 */
const char *dir_diagnose(bic_arena *a, const dir_config *d, const dir_fault *f);

#endif
