/*
 * test_ldap_escape.c - fcgi/dir_ldap.c without a server: RFC 4515 escaping of user names in
 * filters, filter templates and their checks, DN comparison, URL lists, attribute names, CA
 * text and failures in plain words.
 */
#include "bic_test.h"

#include <ldap.h>

#include "arena.h"
#include "dir_ldap.h"

static bic_arena *A;

static int setup(void **state)
{
    (void)state;
    A = arena_new(0);
    return A ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(A);
    return 0;
}

static void escape_covers_the_rfc4515_specials(void **state)
{
    (void)state;
    assert_string_equal(dir_filter_escape(A, "ann"), "ann");
    assert_string_equal(dir_filter_escape(A, "*"), "\\2a");
    assert_string_equal(dir_filter_escape(A, "a(b)c"), "a\\28b\\29c");
    assert_string_equal(dir_filter_escape(A, "back\\slash"), "back\\5cslash");
    assert_string_equal(dir_filter_escape(A, "*)(uid=*"), "\\2a\\29\\28uid=\\2a");
    /* controls are escaped too; UTF-8 stays as it is (RFC 4515 allows it) */
    assert_string_equal(dir_filter_escape(A, "a\tb\x7f"), "a\\09b\\7f");
    assert_string_equal(dir_filter_escape(A, "김민수"), "김민수");
    assert_string_equal(dir_filter_escape(A, ""), "");
}

static void expand_escapes_every_placeholder(void **state)
{
    (void)state;
    assert_string_equal(dir_filter_expand(A, "(&(objectClass=person)(uid=%s))", "ann", NULL),
                        "(&(objectClass=person)(uid=ann))");
    assert_string_equal(dir_filter_expand(A, "(|(uid=%u)(mail=%s))", "a*", NULL),
                        "(|(uid=a\\2a)(mail=a\\2a))");
    assert_string_equal(dir_filter_expand(A, "(member=%d)", "x", "cn=a\\,b,dc=t"),
                        "(member=cn=a\\5c,b,dc=t)");
    assert_string_equal(dir_filter_expand(A, "(cn=100%%)", "x", NULL), "(cn=100%)");
    /* the injection the escaping exists for: the name stays one value */
    assert_string_equal(dir_filter_expand(A, "(uid=%s)", "*)(uid=*", NULL),
                        "(uid=\\2a\\29\\28uid=\\2a)");
    assert_null(dir_filter_expand(A, "(uid=%x)", "ann", NULL));
    assert_null(dir_filter_expand(A, "(member=%d)", "ann", NULL)); /* no DN known */
    assert_null(dir_filter_expand(A, "(uid=ann)%", "ann", NULL));
}

static void filter_check_knows_each_kind(void **state)
{
    (void)state;
    assert_null(dir_filter_check("(uid=%s)", DIR_FILTER_USER));
    assert_null(dir_filter_check("(&(objectClass=user)(sAMAccountName=%u))", DIR_FILTER_USER));
    assert_null(dir_filter_check("(&(objectClass=groupOfNames)(member=%d))", DIR_FILTER_GROUP));
    assert_null(dir_filter_check("(memberUid=%u)", DIR_FILTER_GROUP));
    assert_null(
        dir_filter_check("(userAccountControl:1.2.840.113556.1.4.803:=2)", DIR_FILTER_PLAIN));
    assert_null(dir_filter_check("(cn=a\\28b\\29)", DIR_FILTER_PLAIN));
    assert_true(test_contains(dir_filter_check("uid=%s", DIR_FILTER_USER), "parentheses"));
    assert_true(test_contains(dir_filter_check("(uid=ann)", DIR_FILTER_USER), "%s"));
    assert_true(test_contains(dir_filter_check("(member=%d)", DIR_FILTER_USER), "%d"));
    assert_true(test_contains(dir_filter_check("(objectClass=group)", DIR_FILTER_GROUP), "%d"));
    assert_true(test_contains(dir_filter_check("(uid=%s)", DIR_FILTER_PLAIN), "placeholders"));
    assert_true(test_contains(dir_filter_check("(&(uid=%s)", DIR_FILTER_USER), "do not match"));
    assert_true(test_contains(dir_filter_check("(uid=%s))", DIR_FILTER_USER), "do not match"));
    assert_true(test_contains(dir_filter_check("(uid=%s)(cn=x)", DIR_FILTER_USER), "one"));
    assert_true(test_contains(dir_filter_check("(uid=%q)", DIR_FILTER_USER), "placeholders"));
    assert_true(test_contains(dir_filter_check("(uid=\\zz%s)", DIR_FILTER_USER), "hex escape"));
    assert_true(test_contains(dir_filter_check("(uid=%s\n)", DIR_FILTER_USER), "control"));
}

static void dns_compare_in_one_form(void **state)
{
    (void)state;
    const char *a = dir_dn_norm(A, "CN=VDI Users, OU=Groups,DC=Example,DC=com");
    const char *b = dir_dn_norm(A, "cn=vdi users,ou=groups,dc=example,dc=com");
    assert_string_equal(a, b);
    assert_string_equal(b, "cn=vdi users,ou=groups,dc=example,dc=com");
    assert_string_not_equal(dir_dn_norm(A, "cn=a,dc=x"), dir_dn_norm(A, "cn=b,dc=x"));
    /* not a DN libldap parses: trimmed and lower-cased only */
    assert_string_equal(dir_dn_norm(A, "  Not=A=DN,,  "), "not=a=dn,,");
    assert_true(dir_dn_ok("cn=a,dc=x"));
    assert_true(dir_dn_ok("cn=a\\,b,dc=x"));
    assert_false(dir_dn_ok("not a dn"));
    assert_false(dir_dn_ok(""));
}

static void url_lists_are_checked(void **state)
{
    (void)state;
    assert_null(dir_url_check(A, "ldaps://dc1.example.com", false));
    assert_null(dir_url_check(A, "ldap://a:389 ldap://b:389", true));
    assert_null(dir_url_check(A, "ldaps://[::1]:636, ldaps://dc2", false));
    assert_true(test_contains(dir_url_check(A, "", false), "at least one"));
    assert_true(test_contains(dir_url_check(A, "http://a", false), "only ldap:// and ldaps://"));
    assert_true(test_contains(dir_url_check(A, "ldapi:///run/x", false), "only ldap://"));
    assert_true(test_contains(dir_url_check(A, "ldap://a/dc=x", false), "only the scheme"));
    assert_true(
        test_contains(dir_url_check(A, "ldap://a/??sub?(uid=x)", false), "only the scheme"));
    assert_true(test_contains(dir_url_check(A, "ldaps://a", true), "StartTLS is for ldap://"));
    assert_true(test_contains(dir_url_check(A,
                                            "ldap://a ldap://b ldap://c ldap://d ldap://e "
                                            "ldap://f ldap://g ldap://h ldap://i",
                                            false),
                              "at most 8"));
    const char *list[DIR_URLS_MAX];
    assert_int_equal(dir_url_list(A, " ldap://a,,ldap://b  ", list, DIR_URLS_MAX), 2);
    assert_string_equal(list[0], "ldap://a");
    assert_string_equal(list[1], "ldap://b");
}

static void attribute_names(void **state)
{
    (void)state;
    assert_true(dir_attr_ok("uid"));
    assert_true(dir_attr_ok("sAMAccountName"));
    assert_true(dir_attr_ok("msDS-UserPasswordExpiryTimeComputed"));
    assert_true(dir_attr_ok("1.2.840.113556.1.4.8"));
    assert_false(dir_attr_ok(""));
    assert_false(dir_attr_ok("uid x"));
    assert_false(dir_attr_ok("uid;binary"));
    assert_false(dir_attr_ok("1.2."));
    assert_false(dir_attr_ok("-uid"));
    assert_false(dir_attr_ok("*"));
}

/* a self-signed certificate: CN=pem test, valid 2025-01-01 to 2035-01-01 (python3-cryptography) */
static const char CERT_BODY[] = "MIIBJzCBzqADAgECAgEBMAoGCCqGSM49BAMCMBMxETAPBgNVBAMMCHBlbSB0ZXN0"
                                "MB4XDTI1MDEwMTAwMDAwMFoXDTM1MDEwMTAwMDAwMFowEzERMA8GA1UEAwwIcGVt"
                                "IHRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT9OQJW0XcDAnJXSmV3xyO/"
                                "8SD+deelYWhdiF0AhOMpQztkqTIyNZ3pKJU8F3iar5vo+1PQzsTqsiOB08sYV+Ts"
                                "oxMwETAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIBaI752FcdVk"
                                "sncbXod03vjcTTJa9fPiAhQ/zMPLiHLHAiEA2FMOXQMMaT2R9eKFnPpti1lLnVD9"
                                "1B7JffPE7Fl5H7o=";

static void pem_text_is_normalised_and_checked(void **state)
{
    (void)state;
    const char *why;
    char one_line[2048];
    snprintf(one_line, sizeof(one_line),
             "junk -----BEGIN CERTIFICATE----- %s "
             "-----END CERTIFICATE----- trailing",
             CERT_BODY);
    const char *pem = dir_pem_normalize(A, one_line, &why);
    assert_non_null(pem);
    assert_true(test_contains(pem, "-----BEGIN CERTIFICATE-----\nMIIBJzCB"));
    /* lines of 64 characters, the END line on its own */
    const char *nl = strchr(pem, '\n');
    assert_int_equal(strchr(nl + 1, '\n') - nl - 1, 64);
    assert_true(test_contains(pem, "H7o=\n-----END CERTIFICATE-----\n"));
    assert_false(test_contains(pem, "junk"));
    /* the same text with its line breaks gives the same result */
    char broken[2048];
    snprintf(broken, sizeof(broken),
             "-----BEGIN CERTIFICATE-----\r\n%.40s\r\n%s\r\n"
             "-----END CERTIFICATE-----\r\n",
             CERT_BODY, CERT_BODY + 40);
    assert_string_equal(dir_pem_normalize(A, broken, &why), pem);
    assert_null(dir_pem_normalize(A, "hello", &why));
    assert_true(test_contains(why, "no certificate"));
    assert_null(dir_pem_normalize(A, "-----BEGIN CERTIFICATE----- AAAA", &why));
    assert_true(test_contains(why, "END CERTIFICATE"));
    assert_null(
        dir_pem_normalize(A, "-----BEGIN CERTIFICATE----- A!A -----END CERTIFICATE-----", &why));
    assert_true(test_contains(why, "base64"));
    assert_null(
        dir_pem_normalize(A, "-----BEGIN PRIVATE KEY----- AA== -----END PRIVATE KEY-----", &why));
    assert_true(test_contains(why, "private key"));
}

static void ca_check_reads_the_subject(void **state)
{
    (void)state;
    const char *subject, *not_after, *why;
    char text[2048];
    snprintf(text, sizeof(text), "-----BEGIN CERTIFICATE-----%s-----END CERTIFICATE-----",
             CERT_BODY);
    const char *pem = dir_pem_normalize(A, text, &why);
    assert_non_null(pem);
    const char *err = dir_ca_check(A, pem, &subject, &not_after);
    if (err) { /* the body above is a real certificate: OpenSSL must read it */
        print_error("dir_ca_check: %s\n", err);
        test_fail("a valid certificate was refused");
    }
    assert_string_equal(subject, "CN=pem test");
    assert_string_equal(not_after, "2035-01-01T00:00:00Z");
    assert_non_null(dir_ca_check(
        A, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &subject, &not_after));
}

static dir_config cfg(void)
{
    return (dir_config){.name = "corp",
                        .url = "ldaps://dc1.example.com",
                        .ca_pem = "",
                        .bind_dn = "cn=bic,dc=example,dc=com",
                        .bind_password = "x",
                        .user_base = "ou=people,dc=example,dc=com",
                        .user_filter = "(uid=%s)",
                        .group_base = "",
                        .group_filter = "",
                        .disabled_filter = "",
                        .attr_username = "uid",
                        .attr_display_name = "cn",
                        .attr_email = "mail",
                        .attr_member_of = "",
                        .timeout = 5};
}

static void failures_in_plain_words(void **state)
{
    (void)state;
    dir_config d = cfg();
    dir_fault f = {
        .step = "bind", .url = "ldaps://dc1.example.com", .rc = LDAP_INVALID_CREDENTIALS};
    assert_true(test_contains(dir_explain(A, &d, &f),
                              "refused the bind DN 'cn=bic,dc=example,dc=com' or its password"));
    f = (dir_fault){.step = "search", .rc = LDAP_NO_SUCH_OBJECT};
    assert_true(test_contains(dir_explain(A, &d, &f), "'ou=people,dc=example,dc=com'"));
    f = (dir_fault){.step = "connect", .url = "ldap://x:389", .rc = LDAP_SERVER_DOWN};
    assert_true(test_contains(dir_explain(A, &d, &f), "cannot connect to ldap://x:389"));
    f = (dir_fault){.step = "connect", .url = "ldaps://x:389", .rc = LDAP_SERVER_DOWN};
    snprintf(f.diag, sizeof(f.diag), "The TLS connection was non-properly terminated.");
    assert_true(test_contains(dir_explain(A, &d, &f), "does not speak TLS on this port"));
    f = (dir_fault){.step = "starttls", .url = "ldap://x", .rc = LDAP_CONNECT_ERROR};
    assert_true(test_contains(dir_explain(A, &d, &f), "not signed by the CA you gave"));
    f = (dir_fault){.step = "starttls", .url = "ldap://x", .rc = LDAP_PROTOCOL_ERROR};
    assert_true(test_contains(dir_explain(A, &d, &f), "does not offer StartTLS"));
    f = (dir_fault){.step = "bind", .rc = LDAP_CONFIDENTIALITY_REQUIRED};
    assert_true(test_contains(dir_explain(A, &d, &f), "encrypted connection"));
    f = (dir_fault){.step = "search", .rc = LDAP_OPERATIONS_ERROR};
    snprintf(f.diag, sizeof(f.diag),
             "000004DC: LdapErr: DSID-0C090A5C, comment: In order to "
             "perform this operation a successful bind must be completed on the connection.");
    assert_true(test_contains(dir_explain(A, &d, &f), "refuses searches without a bind"));
    f = (dir_fault){.step = "search", .rc = LDAP_REFERRAL};
    assert_true(test_contains(dir_explain(A, &d, &f), "referral"));
    f = (dir_fault){.step = "search", .rc = LDAP_TIMEOUT};
    assert_true(test_contains(dir_explain(A, &d, &f), "within 5 seconds"));
    /* anything else still names the server's answer */
    f = (dir_fault){.step = "search", .rc = LDAP_ADMINLIMIT_EXCEEDED};
    assert_true(test_contains(dir_explain(A, &d, &f), "LDAP code 11"));
}

static void an_empty_password_is_never_sent(void **state)
{
    (void)state;
    /* refused before any I/O, so no connection is needed: the handle is never touched */
    dir_fault f;
    assert_int_equal(dir_bind_user(NULL, "uid=ann,dc=x", "", &f), DIR_BAD_PASSWORD);
    assert_int_equal(dir_bind_user(NULL, "uid=ann,dc=x", NULL, &f), DIR_BAD_PASSWORD);
    assert_int_equal(dir_bind_user(NULL, "", "secret", &f), DIR_BAD_PASSWORD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escape_covers_the_rfc4515_specials),
        cmocka_unit_test(expand_escapes_every_placeholder),
        cmocka_unit_test(filter_check_knows_each_kind),
        cmocka_unit_test(dns_compare_in_one_form),
        cmocka_unit_test(url_lists_are_checked),
        cmocka_unit_test(attribute_names),
        cmocka_unit_test(pem_text_is_normalised_and_checked),
        cmocka_unit_test(ca_check_reads_the_subject),
        cmocka_unit_test(failures_in_plain_words),
        cmocka_unit_test(an_empty_password_is_never_sent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
