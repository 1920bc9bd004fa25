/*
 * test_agent_console.c - desktop consoles (agent/ag_console.c) and the
 * synchronous calls that set them (POST /v1/call, agent/ag_agent.c):
 *   - the parts on strings: desktop.console params, the console of a domain
 *     XML, the <graphics> element sent to libvirt, the host of a listen URL;
 *   - the heartbeat's console fields (agent/ag_domains.c) and console events
 *     (agent/ag_events.c), on libvirt's test driver;
 *   - /v1/call through the real daemon (listener, verification, allow-list)
 *     against a fake CCC served here, on the test driver;
 *   - the real thing on qemu:///system: a diskless QEMU (TCG) domain whose VNC
 *     password changes and whose clients are disconnected. When qemu:///system
 *     does not answer, the test starts libvirtd the way tests/lib/bictest.py
 *     does (and stops it again), or skips saying why.
 */
#include "bic_test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <libvirt/virterror.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ag_config.h"
#include "ag_console.h"
#include "ag_daemon.h"
#include "ag_domains.h"
#include "ag_events.h"
#include "ag_exec.h"
#include "ag_hv.h"
#include "ag_log.h"
#include "ag_util.h"

#define UUID1 "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* ---- params ---- */

/* ag_console_params on the JSON text p: 0 or -1, with the error in err. */
static int params(const char *p, ag_console_req *q, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loads(p, JSON_ALLOW_NUL, &je);
    if (!j) test_fail("bad test JSON %s: %s", p, je.text);
    *err = '\0';
    int rc = ag_console_params(j, q, err, errlen);
    json_decref(j);
    return rc;
}

static void console_params_are_exactly_uuid_password_disconnect(void **state)
{
    (void)state;
    ag_console_req q;
    char err[256];
    assert_int_equal(params("{\"uuid\":\"" UUID1 "\",\"password\":\"Ab3dEf7h\","
                            "\"disconnect\":true}",
                            &q, err, sizeof(err)),
                     0);
    assert_string_equal(q.uuid, UUID1);
    assert_string_equal(q.password, "Ab3dEf7h");
    assert_int_equal(q.disconnect, 1);
    assert_int_equal(params("{\"uuid\":\"" UUID1 "\",\"password\":\"x\",\"disconnect\":false}", &q,
                            err, sizeof(err)),
                     0);
    assert_string_equal(q.password, "x");
    assert_int_equal(q.disconnect, 0);

    const struct {
        const char *json, *err;
    } bad[] = {
        {"[]", "params must be an object"},
        {"{\"password\":\"abc\",\"disconnect\":false}", "params.uuid is required"},
        {"{\"uuid\":\"" UUID1 "\",\"disconnect\":false}", "params.password is required"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":\"abc\"}", "params.disconnect is required"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":\"abc\",\"disconnect\":false,\"ttl\":5}",
         "unknown parameter 'ttl'"},
        {"{\"uuid\":\"6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5\",\"password\":\"abc\","
         "\"disconnect\":false}",
         "params.uuid must be a UUID"},
        {"{\"uuid\":\"6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5ff\",\"password\":\"abc\","
         "\"disconnect\":false}",
         "params.uuid must be a UUID"},
        {"{\"uuid\":\"6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5g\",\"password\":\"abc\","
         "\"disconnect\":false}",
         "params.uuid must be a UUID"},
        {"{\"uuid\":\"6f1c2d3e04a5b-4c6d-8e9f-0a1b2c3d4e5f\",\"password\":\"abc\","
         "\"disconnect\":false}",
         "params.uuid must be a UUID"},
        {"{\"uuid\":42,\"password\":\"abc\",\"disconnect\":false}", "params.uuid must be a UUID"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":\"abcdefghi\",\"disconnect\":false}",
         "params.password must be 1 to 8 of A-Z a-z 0-9"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":\"\",\"disconnect\":false}",
         "params.password must be 1 to 8 of A-Z a-z 0-9"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":\"abc-1234\",\"disconnect\":false}",
         "params.password must be 1 to 8 of A-Z a-z 0-9"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":\"ab cd\",\"disconnect\":false}",
         "params.password must be 1 to 8 of A-Z a-z 0-9"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":\"p\\u00e4ss\",\"disconnect\":false}",
         "params.password must be 1 to 8 of A-Z a-z 0-9"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":\"ab\\u0000cd\",\"disconnect\":false}",
         "params.password must be 1 to 8 of A-Z a-z 0-9"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":12345678,\"disconnect\":false}",
         "params.password must be 1 to 8 of A-Z a-z 0-9"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":\"abc\",\"disconnect\":1}",
         "params.disconnect must be true or false"},
        {"{\"uuid\":\"" UUID1 "\",\"password\":\"abc\",\"disconnect\":\"true\"}",
         "params.disconnect must be true or false"},
    };
    for (size_t i = 0; i < AG_NELEM(bad); i++) {
        if (params(bad[i].json, &q, err, sizeof(err)) != -1) test_fail("accepted: %s", bad[i].json);
        if (strcmp(err, bad[i].err))
            test_fail("%s: '%s', wanted '%s'", bad[i].json, err, bad[i].err);
    }
}

/* ---- the console of a domain XML ---- */

#define LIVE_XML                                                                                   \
    "<domain type='kvm' id='7'>\n  <name>sales-001</name>\n  <devices>\n"                          \
    "    <graphics type='spice' autoport='yes'/>\n"                                                \
    "    <graphics type='vnc' port='5901' autoport='yes' websocket='5701' listen='127.0.0.1' "     \
    "keymap='de' passwdValidTo='2026-01-01T00:00:00'>\n"                                           \
    "      <listen type='address' address='127.0.0.1'/>\n    </graphics>\n"                        \
    "    <video><model type='vga'/></video>\n  </devices>\n</domain>\n"

static int from_xml(const char *xml, ag_console *c)
{
    return ag_console_from_xml(xml, "bs-0101.example", c);
}

static void console_comes_from_the_vnc_websocket_of_the_live_xml(void **state)
{
    (void)state;
    ag_console c;
    assert_int_equal(from_xml(LIVE_XML, &c), 1);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 5701);
    assert_int_equal(c.index, 1); /* after the spice element */
    assert_int_equal(c.has_password, 0);

    const struct {
        const char *graphics;
        int rc, port;
        const char *host;
    } cases[] = {
        /* a wildcard or missing listen address: the host of the agent's listen URL */
        {"<graphics type='vnc' websocket='5702' listen='0.0.0.0'/>", 1, 5702, "bs-0101.example"},
        {"<graphics type='vnc' websocket='5702' listen='::'/>", 1, 5702, "bs-0101.example"},
        {"<graphics type='vnc' websocket='5702'/>", 1, 5702, "bs-0101.example"},
        {"<graphics type='vnc' websocket='5702' listen=''/>", 1, 5702, "bs-0101.example"},
        /* no listen attribute: the first <listen address> */
        {"<graphics type='vnc' websocket='5703'><listen type='address' address='10.1.2.3'/>"
         "</graphics>",
         1, 5703, "10.1.2.3"},
        {"<graphics type='vnc' websocket='5703'><listen type='network' network='mgmt' "
         "address='::1'/></graphics>",
         1, 5703, "::1"},
        /* no websocket */
        {"<graphics type='vnc' port='5900' listen='127.0.0.1'/>", 0, 0, ""},
        {"<graphics type='vnc' websocket='-1' listen='127.0.0.1'/>", 0, 0, ""},
        {"<graphics type='vnc' websocket='70000' listen='127.0.0.1'/>", 0, 0, ""},
        {"<graphics type='vnc' websocket='57x' listen='127.0.0.1'/>", 0, 0, ""},
        {"<graphics type='spice' websocket='5704' listen='127.0.0.1'/>", 0, 0, ""},
        {"", 0, 0, ""},
        /* a host CCC cannot keep */
        {"<graphics type='vnc' websocket='5705' listen='"
         "h234567890123456789012345678901234567890123456789012345678901234.example'/>",
         0, 0, ""},
        {"<graphics type='vnc' websocket='5706' listen='"
         "h234567890123456789012345678901234567890123456789012345678901234'/>",
         1, 5706, "h234567890123456789012345678901234567890123456789012345678901234"},
    };
    for (size_t i = 0; i < AG_NELEM(cases); i++) {
        char xml[1024];
        snprintf(xml, sizeof(xml), "<domain><devices>%s</devices></domain>", cases[i].graphics);
        int rc = from_xml(xml, &c);
        if (rc != cases[i].rc || c.port != cases[i].port || strcmp(c.host, cases[i].host))
            test_fail("%s: %d %s:%d, wanted %d %s:%d", cases[i].graphics, rc, c.host, c.port,
                      cases[i].rc, cases[i].host, cases[i].port);
    }
    /* a password is seen in the secure XML */
    assert_int_equal(
        from_xml("<domain><devices><graphics type='vnc' websocket='5707' passwd='abc'/></devices>"
                 "</domain>",
                 &c),
        1);
    assert_int_equal(c.has_password, 1);
    assert_int_equal(c.index, 0);
    assert_int_equal(from_xml("<domain><devices/></domain>", &c), 0);
    assert_int_equal(c.index, -1);
    assert_int_equal(from_xml("<domain><devices>", &c), -1);
    assert_int_equal(from_xml("<volume/>", &c), 0);
}

static void graphics_element_gets_the_password_and_keeps_the_rest(void **state)
{
    (void)state;
    AG_AUTOFREE char *g = ag_console_graphics_xml(LIVE_XML, "n3wPass1");
    if (!g) test_fail("no graphics element");
    const char *want[] = {"<graphics type=\"vnc\"",
                          "port=\"5901\"",
                          "autoport=\"yes\"",
                          "websocket=\"5701\"",
                          "listen=\"127.0.0.1\"",
                          "keymap=\"de\"",
                          "passwd=\"n3wPass1\"",
                          "connected=\"keep\"",
                          "<listen type=\"address\" address=\"127.0.0.1\"/>",
                          "</graphics>"};
    for (size_t i = 0; i < AG_NELEM(want); i++)
        if (!test_contains(g, want[i])) test_fail("'%s' lacks %s", g, want[i]);
    assert_false(test_contains(g, "passwdValidTo"));
    assert_false(test_contains(g, "spice"));
    assert_false(test_contains(g, "<domain"));
    assert_false(test_contains(g, "<video"));
    /* an old password is replaced, not doubled */
    AG_AUTOFREE char *again = ag_console_graphics_xml(
        "<domain><devices><graphics type='vnc' passwd='old'/></devices></domain>", "new");
    assert_non_null(again);
    assert_true(test_contains(again, "passwd=\"new\""));
    assert_false(test_contains(again, "old"));
    assert_null(ag_console_graphics_xml("<domain><devices><graphics type='spice'/></devices>"
                                        "</domain>",
                                        "x"));
    assert_null(ag_console_graphics_xml("<domain", "x"));
}

static void console_host_is_the_host_of_the_listen_url(void **state)
{
    (void)state;
    const struct {
        const char *url, *host;
    } good[] = {
        {"http://10.0.0.11:7443", "10.0.0.11"},
        {"http://bs-0101:7443/s/3", "bs-0101"},
        {"https://bs-0101.example.org/", "bs-0101.example.org"},
        {"http://[fe80::1]:7443/s/12", "fe80::1"},
        {"http://[::1]", "::1"},
    };
    char host[AG_CONSOLE_HOST_MAX + 1];
    for (size_t i = 0; i < AG_NELEM(good); i++) {
        if (ag_console_url_host(good[i].url, host, sizeof(host)) < 0)
            test_fail("%s refused", good[i].url);
        assert_string_equal(host, good[i].host);
    }
    const char *bad[] = {
        "", "ftp://h:1", "http://", "http://:7443", "http://[::1", "http://u@h/", "10.0.0.11:7443"};
    for (size_t i = 0; i < AG_NELEM(bad); i++)
        if (ag_console_url_host(bad[i], host, sizeof(host)) == 0) test_fail("%s accepted", bad[i]);
    char small[4];
    assert_int_equal(ag_console_url_host("http://bs-0101:1", small, sizeof(small)), -1);
}

static void random_passwords_are_alnum_and_use_every_character(void **state)
{
    (void)state;
    int seen[256] = {0};
    char pw[AG_CONSOLE_PASSWORD_MAX + 1], prev[AG_CONSOLE_PASSWORD_MAX + 1] = "";
    int same = 0;
    for (int i = 0; i < 2000; i++) {
        memset(pw, '#', sizeof(pw));
        assert_int_equal(ag_random_alnum(pw, AG_CONSOLE_PASSWORD_MAX), 0);
        assert_int_equal(strlen(pw), AG_CONSOLE_PASSWORD_MAX);
        assert_int_equal(strspn(pw, ALNUM), AG_CONSOLE_PASSWORD_MAX);
        for (int k = 0; k < AG_CONSOLE_PASSWORD_MAX; k++)
            seen[(unsigned char)pw[k]]++;
        same += !strcmp(pw, prev);
        memcpy(prev, pw, sizeof(pw));
    }
    assert_int_equal(same, 0);
    /* 16000 characters: each of the 62 is expected ~258 times */
    for (const char *c = ALNUM; *c; c++)
        if (seen[(unsigned char)*c] < 150 || seen[(unsigned char)*c] > 380)
            test_fail("'%c' drawn %d times of 16000", *c, seen[(unsigned char)*c]);
}

/* ---- the heartbeat's console fields ---- */

static ag_dom dom(const char *uuid, int port)
{
    ag_dom d;
    memset(&d, 0, sizeof(d));
    snprintf(d.uuid, sizeof(d.uuid), "%s", uuid);
    snprintf(d.name, sizeof(d.name), "sales-001");
    d.state = VIR_DOMAIN_RUNNING;
    d.vcpus = 2;
    d.memory_mib = 4096;
    d.id = 7;
    d.console_read = 1;
    if (port) {
        snprintf(d.console_host, sizeof(d.console_host), "127.0.0.1");
        d.console_port = port;
    }
    return d;
}

static void desktop_json_has_the_console_only_when_there_is_one(void **state)
{
    (void)state;
    ag_dom d = dom(UUID1, 5701);
    json_t *j = ag_dom_json(&d);
    assert_int_equal(json_object_size(j), 10);
    assert_string_equal(json_string_value(json_object_get(j, "console_host")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(j, "console_port")), 5701);
    json_decref(j);
    d = dom(UUID1, 0);
    j = ag_dom_json(&d);
    assert_int_equal(json_object_size(j), 8);
    assert_null(json_object_get(j, "console_host"));
    assert_null(json_object_get(j, "console_port"));
    json_decref(j);
}

/* The delta of cur against prev at 1010 (counters of prev sent at 1000). */
static size_t delta_size(ag_dom p, ag_dom c)
{
    p.counters_sent_at = 1000;
    ag_snapshot prev = {&p, 1}, cur = {&c, 1};
    json_t *removed = NULL;
    json_t *changed = ag_snapshot_delta(&prev, &cur, 1010, &removed);
    assert_non_null(changed);
    size_t n = json_array_size(changed);
    json_decref(changed);
    json_decref(removed);
    return n;
}

static void a_console_change_is_sent_at_once(void **state)
{
    (void)state;
    ag_dom p = dom(UUID1, 5701);
    /* nothing changed; counters only: held back for a minute */
    assert_int_equal(delta_size(p, p), 0);
    ag_dom c = p;
    c.cpu_time_ns += 1000;
    assert_int_equal(delta_size(p, c), 0);
    /* console port, host, or the console coming or going: at once */
    c = p;
    c.console_port = 5702;
    assert_int_equal(delta_size(p, c), 1);
    c = p;
    snprintf(c.console_host, sizeof(c.console_host), "10.0.0.11");
    assert_int_equal(delta_size(p, c), 1);
    assert_int_equal(delta_size(p, dom(UUID1, 0)), 1);
    assert_int_equal(delta_size(dom(UUID1, 0), p), 1);
}

/* ---- on libvirt's test driver ---- */

#define TEST_URI "test:///default"

static virConnectPtr open_test(void)
{
    ag_hv_quiet();
    virConnectPtr c = virConnectOpen(TEST_URI);
    if (!c) test_fail("cannot open %s: %s", TEST_URI, virGetLastErrorMessage());
    return c;
}

/* A running test-driver domain with a fixed VNC websocket on every address. */
static virDomainPtr test_domain_with_websocket(virConnectPtr c)
{
    const char *xml = "<domain type='test'><name>desk-ws</name><uuid>" UUID1 "</uuid>"
                      "<memory unit='MiB'>64</memory><os><type>hvm</type></os><devices>"
                      "<graphics type='vnc' port='5901' autoport='no' websocket='5701' "
                      "listen='0.0.0.0'/></devices></domain>";
    virDomainPtr d = virDomainDefineXML(c, xml);
    if (!d || virDomainCreate(d) < 0) test_fail("test domain: %s", virGetLastErrorMessage());
    return d;
}

static ag_dom *find_dom(ag_snapshot *s, const char *uuid)
{
    return (ag_dom *)ag_snapshot_find(s, uuid);
}

static void collect_reads_the_console_once_per_start(void **state)
{
    (void)state;
    virConnectPtr c = open_test();
    virDomainPtr d = test_domain_with_websocket(c);
    ag_snapshot s1, s2, s3;
    char err[256];
    assert_int_equal(ag_domains_collect(c, NULL, "bs-0101.example", &s1, err, sizeof(err)), 0);
    ag_dom *x = find_dom(&s1, UUID1);
    assert_non_null(x);
    assert_string_equal(x->console_host, "bs-0101.example");
    assert_int_equal(x->console_port, 5701);
    assert_int_equal(x->console_read, 1);
    json_t *j = ag_dom_json(x);
    assert_int_equal(json_integer_value(json_object_get(j, "console_port")), 5701);
    json_decref(j);
    /* the test driver's own domain has no graphics: no console */
    const ag_dom *t = NULL;
    for (size_t i = 0; i < s1.n; i++)
        if (!strcmp(s1.d[i].name, "test")) t = &s1.d[i];
    assert_non_null(t);
    assert_int_equal(t->console_port, 0);
    assert_int_equal(t->console_read, 1);

    /* same run (same id): taken from prev, not read again (a mark made here survives) */
    x->console_port = 1234;
    assert_int_equal(ag_domains_collect(c, &s1, "bs-0101.example", &s2, err, sizeof(err)), 0);
    assert_int_equal(find_dom(&s2, UUID1)->console_port, 1234);
    /* a new start (new id) reads the XML again; a stopped domain has no console */
    assert_int_equal(virDomainDestroy(d), 0);
    assert_int_equal(ag_domains_collect(c, &s2, "bs-0101.example", &s3, err, sizeof(err)), 0);
    assert_int_equal(find_dom(&s3, UUID1)->console_port, 0);
    ag_snapshot_clear(&s3);
    assert_int_equal(virDomainCreate(d), 0);
    assert_int_equal(ag_domains_collect(c, &s2, "bs-0101.example", &s3, err, sizeof(err)), 0);
    assert_int_not_equal(find_dom(&s3, UUID1)->id, find_dom(&s2, UUID1)->id);
    assert_int_equal(find_dom(&s3, UUID1)->console_port, 5701);
    ag_snapshot_clear(&s1);
    ag_snapshot_clear(&s2);
    ag_snapshot_clear(&s3);
    virDomainFree(d);
    virConnectClose(c);
}

static json_t *call(virConnectPtr c, const char *p, int want_status, char *err, size_t errlen)
{
    json_t *j = json_loads(p, 0, NULL);
    assert_non_null(j);
    json_t *result = NULL;
    *err = '\0';
    int status = ag_exec_call(c, "bs-0101.example", "desktop.console", j, &result, err, errlen);
    json_decref(j);
    if (status != want_status) test_fail("%s: %d (%s), wanted %d", p, status, err, want_status);
    if (status == 200 && !result) test_fail("200 without a result");
    if (status != 200 && (result || !*err))
        test_fail("%d with a result or without a reason", status);
    return result;
}

static void test_driver_answers_applied_false_after_the_same_checks(void **state)
{
    (void)state;
    virConnectPtr c = open_test();
    virDomainPtr d = test_domain_with_websocket(c);
    char err[512];
    json_t *r = call(c, "{\"uuid\":\"" UUID1 "\",\"password\":\"abc\",\"disconnect\":true}", 200,
                     err, sizeof(err));
    assert_int_equal(json_object_size(r), 4);
    assert_true(json_is_false(json_object_get(r, "applied")));
    assert_string_equal(json_string_value(json_object_get(r, "reason")), AG_CONSOLE_TEST_DRIVER);
    assert_string_equal(json_string_value(json_object_get(r, "console_host")), "bs-0101.example");
    assert_int_equal(json_integer_value(json_object_get(r, "console_port")), 5701);
    json_decref(r);
    /* the default domain has no graphics: no console fields */
    r = call(c,
             "{\"uuid\":\"6695eb01-f6a4-8304-79aa-97f2502e193f\",\"password\":\"abc\","
             "\"disconnect\":false}",
             200, err, sizeof(err));
    assert_int_equal(json_object_size(r), 2);
    json_decref(r);
    /* not running, not there, bad params, no hypervisor, not a call */
    assert_int_equal(virDomainDestroy(d), 0);
    call(c, "{\"uuid\":\"" UUID1 "\",\"password\":\"abc\",\"disconnect\":false}", 409, err,
         sizeof(err));
    assert_string_equal(err, "domain is not running: " UUID1);
    call(c,
         "{\"uuid\":\"00000000-0000-4000-8000-000000000000\",\"password\":\"abc\","
         "\"disconnect\":false}",
         404, err, sizeof(err));
    assert_string_equal(err, "domain not found: 00000000-0000-4000-8000-000000000000");
    call(c, "{\"uuid\":\"" UUID1 "\",\"password\":\"abcdefghi\",\"disconnect\":false}", 400, err,
         sizeof(err));
    assert_string_equal(err, "params.password must be 1 to 8 of A-Z a-z 0-9");
    call(NULL, "{\"uuid\":\"" UUID1 "\",\"password\":\"abc\",\"disconnect\":false}", 503, err,
         sizeof(err));
    assert_string_equal(err, "hypervisor connection is down");
    json_t *p = json_pack("{s:s}", "uuid", UUID1), *res = NULL;
    assert_int_equal(ag_exec_call(c, "", "domain.destroy", p, &res, err, sizeof(err)), 400);
    assert_string_equal(err, AG_EXEC_NOT_A_CALL);
    assert_null(res);
    /* and a call type is no task */
    ag_exec_env env = {.conn = c};
    assert_int_equal(ag_exec_task(&env, "desktop.console", p, &res, err, sizeof(err)), -1);
    assert_string_equal(err, AG_EXEC_UNKNOWN_TYPE);
    json_decref(p);
    virDomainUndefine(d);
    virDomainFree(d);
    virConnectClose(c);
}

static void console_events_in_words(void **state)
{
    (void)state;
    virConnectPtr c = open_test();
    virDomainPtr d = virDomainLookupByName(c, "test");
    assert_non_null(d);
    virDomainEventGraphicsAddress v4 = {VIR_DOMAIN_EVENT_GRAPHICS_ADDRESS_IPV4, "10.0.0.5",
                                        "51234"};
    virDomainEventGraphicsAddress v6 = {VIR_DOMAIN_EVENT_GRAPHICS_ADDRESS_IPV6, "fe80::1", "443"};
    ag_event ev;
    ag_event_fill_console(&ev, d, VIR_DOMAIN_EVENT_GRAPHICS_CONNECT, &v4);
    assert_string_equal(ev.console, "connect 10.0.0.5:51234");
    assert_null(ev.dom); /* no reference held: nothing to ask libvirt later */
    ag_event_resolve_state(&ev);
    assert_null(ev.state);
    json_t *j = ag_event_json(&ev);
    assert_int_equal(json_object_size(j), 5);
    assert_string_equal(json_string_value(json_object_get(j, "uuid")),
                        "6695eb01-f6a4-8304-79aa-97f2502e193f");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "test");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "console");
    assert_string_equal(json_string_value(json_object_get(j, "detail")), "connect 10.0.0.5:51234");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "at"))), 24);
    assert_null(json_object_get(j, "state")); /* says nothing about the power state */
    json_decref(j);
    ag_event_fill_console(&ev, d, VIR_DOMAIN_EVENT_GRAPHICS_DISCONNECT, &v6);
    assert_string_equal(ev.console, "disconnect [fe80::1]:443");
    ag_event_fill_console(&ev, d, VIR_DOMAIN_EVENT_GRAPHICS_INITIALIZE, &v4);
    assert_string_equal(ev.console, "initialize 10.0.0.5:51234");
    ag_event_fill_console(&ev, d, 99, NULL);
    assert_string_equal(ev.console, "unknown");
    virDomainFree(d);
    virConnectClose(c);
}

/* ---- /v1/call through the daemon, against a fake CCC ---- */

#define TOKEN      "bbt_0123456789abcdef0123456789abcdef0123456"
#define CREDENTIAL "cred_abcdefghijklmnopqrstuvwxyz0123456789ABC"
#define SERVER_ID  17
#define TEST_UUID  "6695eb01-f6a4-8304-79aa-97f2502e193f" /* test:///default's "test" */

struct ccc {
    pthread_mutex_t lock;
    struct MHD_Daemon *mhd;
    int port;
    EVP_PKEY *key;
    char pub_b64[64];
    json_t *log; /* [{"path","body"}] */
};

struct upload {
    char *data;
    size_t len;
};

static enum MHD_Result ccc_request(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *data,
                                   size_t *size, void **con_cls)
{
    (void)method;
    (void)version;
    struct ccc *x = cls;
    struct upload *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof(struct upload));
        return MHD_YES;
    }
    if (*size) {
        u->data = realloc(u->data, u->len + *size + 1);
        memcpy(u->data + u->len, data, *size);
        u->len += *size;
        u->data[u->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    char answer[512] = "";
    unsigned status = 204;
    pthread_mutex_lock(&x->lock);
    json_array_append_new(x->log, json_pack("{s:s, s:o*}", "path", url, "body",
                                            u->data ? json_loads(u->data, 0, NULL) : NULL));
    if (!strcmp(url, "/api/v1/agent/enroll")) {
        status = 200;
        snprintf(answer, sizeof(answer),
                 "{\"server_id\":%d,\"credential\":\"%s\",\"ccc_public_key\":\"%s\","
                 "\"heartbeat_interval\":1}",
                 SERVER_ID, CREDENTIAL, x->pub_b64);
    } else if (!strcmp(url, "/api/v1/agent/heartbeat")) {
        status = 200;
        snprintf(answer, sizeof(answer), "{\"interval\":1,\"resync\":false}");
    }
    pthread_mutex_unlock(&x->lock);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(answer), answer, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void ccc_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct upload *u = *con_cls;
    if (u) free(u->data);
    free(u);
    *con_cls = NULL;
}

static void ccc_start(struct ccc *x)
{
    memset(x, 0, sizeof(*x));
    pthread_mutex_init(&x->lock, NULL);
    x->log = json_array();
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
    assert_int_equal(EVP_PKEY_keygen(kc, &x->key), 1);
    EVP_PKEY_CTX_free(kc);
    unsigned char raw[32];
    size_t n = sizeof(raw);
    EVP_PKEY_get_raw_public_key(x->key, raw, &n);
    AG_AUTOFREE char *b64 = ag_b64_encode(raw, n);
    snprintf(x->pub_b64, sizeof(x->pub_b64), "%s", b64);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    x->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
                              ccc_request, x, MHD_OPTION_NOTIFY_COMPLETED, ccc_completed, NULL,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    assert_non_null(x->mhd);
    x->port = MHD_get_daemon_info(x->mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void ccc_stop(struct ccc *x)
{
    MHD_stop_daemon(x->mhd);
    EVP_PKEY_free(x->key);
    json_decref(x->log);
    pthread_mutex_destroy(&x->lock);
}

/* A copy of the body of the last request to path, waiting up to 15 s for one. */
static json_t *ccc_last(struct ccc *x, const char *path)
{
    for (int t = 0; t < 1500; t++) {
        json_t *found = NULL, *r;
        size_t i;
        pthread_mutex_lock(&x->lock);
        json_array_foreach(x->log, i, r)
        {
            if (!strcmp(json_string_value(json_object_get(r, "path")), path)) {
                json_decref(found);
                found = json_deep_copy(json_object_get(r, "body"));
            }
        }
        pthread_mutex_unlock(&x->lock);
        if (found) return found;
        usleep(10000);
    }
    test_fail("fake CCC: no request to %s within 15 s", path);
    return NULL;
}

struct agent {
    ag_config cfg;
    ag_daemon *d;
    pthread_t thread;
    char dir[64];
};

static void *agent_main(void *arg)
{
    ag_daemon_run(arg);
    return NULL;
}

static void set(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void agent_start(struct agent *a, struct ccc *x)
{
    char err[256], url[64];
    memset(a, 0, sizeof(*a));
    snprintf(a->dir, sizeof(a->dir), "/tmp/bic-agent-console-XXXXXX");
    assert_non_null(mkdtemp(a->dir));
    assert_int_equal(ag_config_load(&a->cfg, NULL, err, sizeof(err)), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", x->port);
    set(&a->cfg.ccc_url, url);
    set(&a->cfg.token, TOKEN);
    set(&a->cfg.state_dir, a->dir);
    set(&a->cfg.listen, "127.0.0.1:0");
    set(&a->cfg.libvirt_uri, TEST_URI);
    set(&a->cfg.machine_id, "aaaabbbbccccddddeeeeffff00002222");
    set(&a->cfg.hostname, "bs-console-01");
    a->cfg.heartbeat_interval = 1;
    if (ag_config_resolve(&a->cfg, err, sizeof(err)) < 0) test_fail("config: %s", err);
    a->d = ag_daemon_new(&a->cfg, err, sizeof(err));
    if (!a->d) test_fail("ag_daemon_new: %s", err);
    assert_int_equal(pthread_create(&a->thread, NULL, agent_main, a->d), 0);
}

static void agent_stop(struct agent *a)
{
    ag_daemon_stop(a->d);
    pthread_join(a->thread, NULL);
    ag_daemon_free(a->d);
    ag_config_free(&a->cfg);
    nftw(a->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

struct reply {
    char body[1024];
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    struct reply *r = user;
    size_t k = size * n;
    if (r->len + k < sizeof(r->body)) {
        memcpy(r->body + r->len, p, k);
        r->len += k;
        r->body[r->len] = '\0';
    }
    return k;
}

/* Signs body like CCC (bad_sig: a flipped bit) and POSTs it to path of the agent; the status. */
static long post(struct ccc *x, struct agent *a, const char *method, const char *path,
                 const char *body, int bad_sig, struct reply *out)
{
    unsigned char sig[64];
    size_t n = sizeof(sig);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_DigestSignInit(mc, NULL, NULL, NULL, x->key);
    EVP_DigestSign(mc, sig, &n, (const unsigned char *)body, strlen(body));
    EVP_MD_CTX_free(mc);
    if (bad_sig) sig[0] ^= 1;
    AG_AUTOFREE char *b64 = ag_b64_encode(sig, n);
    char hdr[160], url[300];
    snprintf(hdr, sizeof(hdr), "X-BIC-Signature: %s", b64);
    snprintf(url, sizeof(url), "%s%s", ag_daemon_listen_url(a->d), path);
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, hdr);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* A call body (task_id 0) with a fresh nonce. */
static char *call_body(long long task_id, long long server_id, const char *type, const char *params,
                       long long issued_at)
{
    static int counter;
    char *body = NULL;
    assert_true(asprintf(&body,
                         "{\"task_id\":%lld,\"server_id\":%lld,\"type\":\"%s\",\"params\":%s,"
                         "\"issued_at\":%lld,\"nonce\":\"call-nonce-%d-abcdefghijklmnop\"}",
                         task_id, server_id, type, params, issued_at, ++counter) > 0);
    return body;
}

/* The answer of a call: {"ok":false,"error":want}, or {"ok":true,"result":...} when want is NULL.
 */
static json_t *answer_of(const struct reply *r, const char *want_error)
{
    json_t *j = json_loads(r->body, 0, NULL);
    if (!j) test_fail("answer is not JSON: %s", r->body);
    if (want_error) {
        assert_int_equal(json_object_size(j), 2);
        assert_true(json_is_false(json_object_get(j, "ok")));
        const char *e = json_string_value(json_object_get(j, "error"));
        if (!e || strcmp(e, want_error)) test_fail("error %s, wanted %s", r->body, want_error);
        json_decref(j);
        return NULL;
    }
    assert_int_equal(json_object_size(j), 2);
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_t *res = json_incref(json_object_get(j, "result"));
    assert_true(json_is_object(res));
    json_decref(j);
    return res;
}

#define CONSOLE_PARAMS(pw)                                                                         \
    "{\"uuid\":\"" TEST_UUID "\",\"password\":\"" pw "\",\"disconnect\":true}"

static void v1_call_is_verified_allow_listed_and_answered_at_once(void **state)
{
    (void)state;
    struct ccc x;
    struct agent a;
    ccc_start(&x);
    agent_start(&a, &x);
    struct reply r;
    long long now = (long long)time(NULL);

    /* enrolled once it sends heartbeats */
    json_t *hb = ccc_last(&x, "/api/v1/agent/heartbeat");
    /* the heartbeat: the test domain, without console fields (no graphics) */
    size_t i;
    json_t *d, *test = NULL;
    json_array_foreach(json_object_get(hb, "desktops"), i,
                       d) if (!strcmp(json_string_value(json_object_get(d, "uuid")), TEST_UUID))
        test = d;
    assert_non_null(test);
    assert_null(json_object_get(test, "console_port"));
    json_decref(hb);

    AG_AUTOFREE char *ok =
        call_body(0, SERVER_ID, "desktop.console", CONSOLE_PARAMS("Ab3dEf7h"), now);
    assert_int_equal(post(&x, &a, "POST", "/v1/call", ok, 0, &r), 200);
    json_t *res = answer_of(&r, NULL);
    assert_int_equal(json_object_size(res), 2);
    assert_true(json_is_false(json_object_get(res, "applied")));
    assert_string_equal(json_string_value(json_object_get(res, "reason")), AG_CONSOLE_TEST_DRIVER);
    json_decref(res);
    /* the password never reaches the agent's answer */
    assert_false(test_contains(r.body, "Ab3dEf7h"));

    /* the same signed body again: a replay */
    assert_int_equal(post(&x, &a, "POST", "/v1/call", ok, 0, &r), 401);
    answer_of(&r, "nonce_reused");
    /* signature, server, time */
    AG_AUTOFREE char *b1 = call_body(0, SERVER_ID, "desktop.console", CONSOLE_PARAMS("x"), now);
    assert_int_equal(post(&x, &a, "POST", "/v1/call", b1, 1, &r), 401);
    answer_of(&r, "bad_signature");
    assert_int_equal(post(&x, &a, "POST", "/v1/call", b1, 0, &r), 200); /* not spent by that */
    json_decref(answer_of(&r, NULL));
    AG_AUTOFREE char *b2 = call_body(0, SERVER_ID + 1, "desktop.console", CONSOLE_PARAMS("x"), now);
    assert_int_equal(post(&x, &a, "POST", "/v1/call", b2, 0, &r), 409);
    answer_of(&r, "wrong_server");
    AG_AUTOFREE char *b3 =
        call_body(0, SERVER_ID, "desktop.console", CONSOLE_PARAMS("x"), now - 600);
    assert_int_equal(post(&x, &a, "POST", "/v1/call", b3, 0, &r), 401);
    answer_of(&r, "bad_time");
    /* a task body is no call, and a call body no task */
    AG_AUTOFREE char *b4 = call_body(5, SERVER_ID, "desktop.console", CONSOLE_PARAMS("x"), now);
    assert_int_equal(post(&x, &a, "POST", "/v1/call", b4, 0, &r), 400);
    answer_of(&r, "bad_task");
    AG_AUTOFREE char *b5 =
        call_body(0, SERVER_ID, "domain.destroy", "{\"uuid\":\"" TEST_UUID "\"}", now);
    assert_int_equal(post(&x, &a, "POST", "/v1/tasks", b5, 0, &r), 400);
    assert_true(test_contains(r.body, "bad_task"));
    /* the allow-list: a task type is not run as a call (the domain keeps running) */
    AG_AUTOFREE char *b6 =
        call_body(0, SERVER_ID, "domain.destroy", "{\"uuid\":\"" TEST_UUID "\"}", now);
    assert_int_equal(post(&x, &a, "POST", "/v1/call", b6, 0, &r), 400);
    answer_of(&r, AG_EXEC_NOT_A_CALL);
    AG_AUTOFREE char *b7 = call_body(0, SERVER_ID, "desktop.console", CONSOLE_PARAMS("x"), now);
    assert_int_equal(post(&x, &a, "POST", "/v1/call", b7, 0, &r), 200);
    json_decref(answer_of(&r, NULL));
    /* the call's own failures */
    AG_AUTOFREE char *b8 = call_body(0, SERVER_ID, "desktop.console",
                                     "{\"uuid\":\"" TEST_UUID "\",\"password\":\"abcdefghi\","
                                     "\"disconnect\":true}",
                                     now);
    assert_int_equal(post(&x, &a, "POST", "/v1/call", b8, 0, &r), 400);
    answer_of(&r, "params.password must be 1 to 8 of A-Z a-z 0-9");
    AG_AUTOFREE char *b9 = call_body(0, SERVER_ID, "desktop.console",
                                     "{\"uuid\":\"" UUID1 "\",\"password\":\"abc\","
                                     "\"disconnect\":false}",
                                     now);
    assert_int_equal(post(&x, &a, "POST", "/v1/call", b9, 0, &r), 404);
    answer_of(&r, "domain not found: " UUID1);
    /* the listener's own refusals keep the call's shape */
    AG_AUTOFREE char *b10 = call_body(0, SERVER_ID, "desktop.console", CONSOLE_PARAMS("x"), now);
    assert_int_equal(post(&x, &a, "PUT", "/v1/call", b10, 0, &r), 405);
    answer_of(&r, "method_not_allowed");
    assert_int_equal(post(&x, &a, "POST", "/v1/calls", b10, 0, &r), 404);
    agent_stop(&a);
    ccc_stop(&x);
}

/* ---- qemu:///system ---- */

#define QEMU_URI    "qemu:///system"
#define QEMU_PREFIX "bic-console-test-"

struct qemu {
    virConnectPtr conn;
    int started_libvirtd; /* this test started libvirtd: it stops it again */
    pid_t libvirtd_pid;
    char name[64], name2[64];
    char uuid[VIR_UUID_STRING_BUFLEN], uuid2[VIR_UUID_STRING_BUFLEN];
    pthread_mutex_t lock;
    json_t *events; /* console events of our domain, as JSON */
    ag_hv *hv;
};

static int sh(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static virConnectPtr qemu_open(void)
{
    virConnectPtr c = virConnectOpen(QEMU_URI);
    if (!c) virResetLastError();
    return c;
}

/* As tests/lib/bictest.py ensure_libvirtd: virtlogd and libvirtd when qemu:///system is silent. */
static virConnectPtr qemu_connect(struct qemu *q, char *why, size_t whylen)
{
    ag_hv_quiet();
    if (access("/usr/bin/qemu-system-x86_64", X_OK)) {
        snprintf(why, whylen, "qemu-system-x86_64 is not installed");
        return NULL;
    }
    virConnectPtr c = qemu_open();
    if (c) return c;
    if (access("/usr/sbin/libvirtd", X_OK)) {
        snprintf(why, whylen, "libvirtd is not installed");
        return NULL;
    }
    mkdir("/var/log/libvirt", 0755);
    mkdir("/run/libvirt", 0755);
    if (sh("pgrep -x virtlogd >/dev/null || virtlogd -d") != 0 || sh("libvirtd -d") != 0) {
        snprintf(why, whylen, "libvirtd did not start here");
        return NULL;
    }
    for (int i = 0; i < 200 && !c; i++) {
        usleep(100000);
        c = qemu_open();
    }
    if (!c) {
        snprintf(why, whylen, "libvirtd did not answer within 20 s");
        return NULL;
    }
    AG_AUTOFREE char *pid = ag_file_read("/run/libvirtd.pid", 64, NULL);
    q->libvirtd_pid = pid ? (pid_t)atol(pid) : 0;
    q->started_libvirtd = q->libvirtd_pid > 0;
    return c;
}

static void qemu_remove(virConnectPtr c, const char *name)
{
    virDomainPtr d = virDomainLookupByName(c, name);
    if (!d) {
        virResetLastError();
        return;
    }
    virDomainDestroy(d);
    virDomainUndefine(d);
    virDomainFree(d);
    virResetLastError();
}

/* Removes domains of runs that died (their pid is gone). */
static void qemu_sweep(virConnectPtr c)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(c, &doms, 0);
    for (int i = 0; i < n; i++) {
        const char *name = virDomainGetName(doms[i]);
        long pid = 0;
        if (name && !strncmp(name, QEMU_PREFIX, strlen(QEMU_PREFIX)))
            pid = strtol(name + strlen(QEMU_PREFIX), NULL, 10);
        if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            virDomainDestroy(doms[i]);
            virDomainUndefine(doms[i]);
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    virResetLastError();
}

static void on_hv_event(void *arg, ag_event *ev)
{
    struct qemu *q = arg;
    pthread_mutex_lock(&q->lock);
    if (*ev->console && !strcmp(ev->uuid, q->uuid))
        json_array_append_new(q->events, ag_event_json(ev));
    pthread_mutex_unlock(&q->lock);
    ag_event_clear(ev);
}

static void on_hv_wake(void *arg)
{
    (void)arg;
}

static int qemu_setup(void **state)
{
    struct qemu *q = calloc(1, sizeof(*q));
    pthread_mutex_init(&q->lock, NULL);
    q->events = json_array();
    *state = q;
    char why[256];
    q->conn = qemu_connect(q, why, sizeof(why));
    if (!q->conn) {
        print_message("# qemu:///system is not reachable here (%s): the real console check did "
                      "not run\n",
                      why);
        return 0;
    }
    qemu_sweep(q->conn);
    long pid = (long)getpid();
    snprintf(q->name, sizeof(q->name), QEMU_PREFIX "%ld", pid);
    snprintf(q->name2, sizeof(q->name2), QEMU_PREFIX "%ld-nopw", pid);
    snprintf(q->uuid, sizeof(q->uuid), "7c0a5e1e-0b1c-4d2e-8f3a-%012lx", pid & 0xffffffffffffL);
    snprintf(q->uuid2, sizeof(q->uuid2), "7c0a5e1e-0b1c-4d2e-8f3b-%012lx", pid & 0xffffffffffffL);
    qemu_remove(q->conn, q->name);
    qemu_remove(q->conn, q->name2);
    return 0;
}

static int qemu_teardown(void **state)
{
    struct qemu *q = *state;
    ag_hv_free(q->hv);
    if (q->conn) {
        qemu_remove(q->conn, q->name);
        qemu_remove(q->conn, q->name2);
        virConnectClose(q->conn);
    }
    if (q->started_libvirtd) kill(q->libvirtd_pid, SIGTERM);
    json_decref(q->events);
    pthread_mutex_destroy(&q->lock);
    free(q);
    return 0;
}

/* A diskless QEMU (TCG) domain with a VNC websocket on 127.0.0.1, started; passwd may be NULL. */
static virDomainPtr qemu_domain(virConnectPtr c, const char *name, const char *uuid,
                                const char *passwd)
{
    char xml[1024], pw[64] = "";
    if (passwd) snprintf(pw, sizeof(pw), " passwd='%s'", passwd);
    snprintf(xml, sizeof(xml),
             "<domain type='qemu'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>64</memory>"
             "<vcpu>1</vcpu><os><type>hvm</type></os><devices>"
             "<graphics type='vnc' listen='127.0.0.1' websocket='-1' autoport='yes'%s/>"
             "</devices></domain>",
             name, uuid, pw);
    virDomainPtr d = virDomainDefineXML(c, xml);
    if (!d || virDomainCreate(d) < 0) test_fail("%s: %s", name, virGetLastErrorMessage());
    return d;
}

/* The console of d from its live secure XML, and its VNC TCP port. */
static ag_console live_console(virDomainPtr d, int *vnc_port, char *passwd, size_t len)
{
    AG_AUTOFREE char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_SECURE);
    assert_non_null(xml);
    ag_console c;
    assert_int_equal(ag_console_from_xml(xml, NULL, &c), 1);
    const char *p = strstr(xml, " port='");
    *vnc_port = p ? atoi(p + 7) : 0;
    *passwd = '\0';
    p = strstr(xml, "passwd='");
    if (p) snprintf(passwd, len, "%.*s", (int)strcspn(p + 8, "'"), p + 8);
    return c;
}

/* A VNC viewer of our own through libvirt (no authentication), past ClientInit (shared). */
static int viewer_open(virDomainPtr d)
{
    int fd = virDomainOpenGraphicsFD(d, 0, VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH);
    if (fd < 0) test_fail("virDomainOpenGraphicsFD: %s", virGetLastErrorMessage());
    unsigned char b[64];
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(recv(fd, b, 12, MSG_WAITALL), 12);
    assert_int_equal(send(fd, "RFB 003.008\n", 12, MSG_NOSIGNAL), 12);
    assert_int_equal(recv(fd, b, 2, MSG_WAITALL), 2); /* one type: none */
    assert_int_equal(b[1], 1);
    assert_int_equal(send(fd, "\x01", 1, MSG_NOSIGNAL), 1);
    assert_int_equal(recv(fd, b, 4, MSG_WAITALL), 4);
    assert_int_equal(send(fd, "\x01", 1, MSG_NOSIGNAL), 1); /* shared */
    assert_int_equal(recv(fd, b, 24, MSG_WAITALL), 24);     /* ServerInit */
    return fd;
}

/* 1 when the server closed fd within ms (whatever it sent before is read and dropped). */
static int closed_within(int fd, int ms)
{
    long long until = ag_mono_ms() + ms;
    for (;;) {
        long long left = until - ag_mono_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) return 0;
        char buf[4096];
        ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) return 1;
    }
}

static json_t *qemu_call(struct qemu *q, const char *uuid, const char *pw, int disconnect, int want,
                         char *err, size_t errlen)
{
    json_t *p =
        json_pack("{s:s, s:s, s:b}", "uuid", uuid, "password", pw, "disconnect", disconnect);
    json_t *res = NULL;
    int status = ag_exec_call(q->conn, "bs-0101.example", "desktop.console", p, &res, err, errlen);
    json_decref(p);
    if (status != want) test_fail("desktop.console: %d (%s), wanted %d", status, err, want);
    return res;
}

/* Waits up to 10 s for a console event of our domain whose detail starts with prefix. */
static int wait_event(struct qemu *q, const char *prefix)
{
    for (int t = 0; t < 1000; t++) {
        size_t i;
        json_t *e;
        int found = 0;
        pthread_mutex_lock(&q->lock);
        json_array_foreach(q->events, i,
                           e) if (!strncmp(json_string_value(json_object_get(e, "detail")), prefix,
                                           strlen(prefix))) found = 1;
        pthread_mutex_unlock(&q->lock);
        if (found) return 1;
        usleep(10000);
    }
    return 0;
}

static void qemu_console_password_and_disconnect(void **state)
{
    struct qemu *q = *state;
    if (!q->conn) skip();
    char err[512], pw[32];
    int vnc_port;
    ag_hv_ops ops = {on_hv_event, on_hv_wake, q};
    q->hv = ag_hv_new(QEMU_URI, &ops);
    assert_non_null(q->hv);
    assert_int_equal(ag_hv_tick(q->hv, ag_mono_ms(), NULL), 1);

    virDomainPtr d = qemu_domain(q->conn, q->name, q->uuid, "first123");
    ag_console before = live_console(d, &vnc_port, pw, sizeof(pw));
    assert_string_equal(pw, "first123");
    assert_string_equal(before.host, "127.0.0.1");
    assert_true(before.port > 0);

    /* the heartbeat sees the websocket */
    ag_snapshot s;
    assert_int_equal(ag_domains_collect(q->conn, NULL, "bs-0101.example", &s, err, sizeof(err)), 0);
    const ag_dom *x = ag_snapshot_find(&s, q->uuid);
    assert_non_null(x);
    assert_string_equal(x->console_host, "127.0.0.1");
    assert_int_equal(x->console_port, before.port);
    ag_snapshot_clear(&s);

    /* a new password, clients kept */
    int viewer = viewer_open(d);
    json_t *r = qemu_call(q, q->uuid, "n3wPass1", 0, 200, err, sizeof(err));
    assert_int_equal(json_object_size(r), 3);
    assert_true(json_is_true(json_object_get(r, "applied")));
    assert_string_equal(json_string_value(json_object_get(r, "console_host")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(r, "console_port")), before.port);
    json_decref(r);
    ag_console after = live_console(d, &vnc_port, pw, sizeof(pw));
    assert_string_equal(pw, "n3wPass1");
    assert_int_equal(after.port, before.port);
    assert_int_equal(closed_within(viewer, 1000), 0);

    /* and again with disconnect: the viewer is closed */
    r = qemu_call(q, q->uuid, "0therPw2", 1, 200, err, sizeof(err));
    assert_true(json_is_true(json_object_get(r, "applied")));
    json_decref(r);
    live_console(d, &vnc_port, pw, sizeof(pw));
    assert_string_equal(pw, "0therPw2");
    if (!closed_within(viewer, 5000)) test_fail("the viewer is still connected after disconnect");
    close(viewer);
    print_message("# qemu:///system: websocket %d, password changed twice, viewer disconnected\n",
                  before.port);

    /* console events of a TCP client: connect and disconnect with its address */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)vnc_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char hello[12];
    assert_int_equal(recv(fd, hello, 12, MSG_WAITALL), 12);
    if (!wait_event(q, "connect 127.0.0.1:")) test_fail("no console connect event");
    close(fd);
    if (!wait_event(q, "disconnect 127.0.0.1:")) test_fail("no console disconnect event");
    /* the agent's own (UNIX socket) clients are not reported */
    pthread_mutex_lock(&q->lock);
    size_t i;
    json_t *e;
    json_array_foreach(q->events, i, e)
    {
        const char *det = json_string_value(json_object_get(e, "detail"));
        if (!strstr(det, "127.0.0.1:")) test_fail("unexpected console event %s", det);
        assert_string_equal(json_string_value(json_object_get(e, "event")), "console");
    }
    pthread_mutex_unlock(&q->lock);

    /* not running */
    assert_int_equal(virDomainDestroy(d), 0);
    qemu_call(q, q->uuid, "abc", 0, 409, err, sizeof(err));
    char want[128];
    snprintf(want, sizeof(want), "domain is not running: %s", q->uuid);
    assert_string_equal(err, want);
    virDomainFree(d);

    /* a VNC server started without a password cannot get one: 409, and its definition gets one */
    d = qemu_domain(q->conn, q->name2, q->uuid2, NULL);
    qemu_call(q, q->uuid2, "abc", 0, 409, err, sizeof(err));
    snprintf(want, sizeof(want),
             "the VNC server of domain %s was started without a password: it takes one from its "
             "next start",
             q->uuid2);
    assert_string_equal(err, want);
    AG_AUTOFREE char *def = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    const char *p = def ? strstr(def, "passwd='") : NULL;
    if (!p) test_fail("no password in the definition: %s", def);
    assert_int_equal(strspn(p + 8, ALNUM), AG_CONSOLE_PASSWORD_MAX);
    /* after a restart it works */
    assert_int_equal(virDomainDestroy(d), 0);
    assert_int_equal(virDomainCreate(d), 0);
    json_decref(qemu_call(q, q->uuid2, "abc", 1, 200, err, sizeof(err)));
    virDomainFree(d);
}

int main(void)
{
    ag_log_set_level(AG_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(console_params_are_exactly_uuid_password_disconnect),
        cmocka_unit_test(console_comes_from_the_vnc_websocket_of_the_live_xml),
        cmocka_unit_test(graphics_element_gets_the_password_and_keeps_the_rest),
        cmocka_unit_test(console_host_is_the_host_of_the_listen_url),
        cmocka_unit_test(random_passwords_are_alnum_and_use_every_character),
        cmocka_unit_test(desktop_json_has_the_console_only_when_there_is_one),
        cmocka_unit_test(a_console_change_is_sent_at_once),
        cmocka_unit_test(collect_reads_the_console_once_per_start),
        cmocka_unit_test(test_driver_answers_applied_false_after_the_same_checks),
        cmocka_unit_test(console_events_in_words),
        cmocka_unit_test(v1_call_is_verified_allow_listed_and_answered_at_once),
        cmocka_unit_test_setup_teardown(qemu_console_password_and_disconnect, qemu_setup,
                                        qemu_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
