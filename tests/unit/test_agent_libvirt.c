/*
 * test_agent_libvirt.c - the agent against libvirt's test driver
 * (test:///default: a private in-memory hypervisor per connection, with one
 * running domain "test"): agent/ag_domains.c collects snapshots, agent/ag_exec.c
 * runs tasks, agent/ag_hv.c connects, delivers lifecycle events and reconnects.
 */
#include "bic_test.h"

#include <libvirt/virterror.h>
#include <pthread.h>
#include <unistd.h>

#include "ag_domains.h"
#include "ag_exec.h"
#include "ag_hv.h"
#include "ag_log.h"
#include "ag_util.h"

#define URI "test:///default"

static virConnectPtr open_test(void)
{
    ag_hv_quiet();
    virConnectPtr c = virConnectOpen(URI);
    if (!c) test_fail("cannot open %s: %s", URI, virGetLastErrorMessage());
    return c;
}

static const ag_dom *find_by_name(const ag_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->d[i].name, name)) return &s->d[i];
    return NULL;
}

/* The state of domain "test" now. */
static int test_state(virConnectPtr c, char uuid[VIR_UUID_STRING_BUFLEN])
{
    ag_snapshot s;
    char err[256];
    if (ag_domains_collect(c, NULL, "", &s, err, sizeof(err)) < 0) test_fail("collect: %s", err);
    const ag_dom *d = find_by_name(&s, "test");
    if (!d) test_fail("domain 'test' is not listed");
    if (uuid) memcpy(uuid, d->uuid, VIR_UUID_STRING_BUFLEN);
    int st = d->state;
    ag_snapshot_clear(&s);
    return st;
}

static int run(virConnectPtr c, const char *type, json_t *params, json_t **result, char *err,
               size_t errlen)
{
    ag_exec_env env = {c, NULL, NULL};
    int rc = ag_exec_task(&env, type, params, result, err, errlen);
    json_decref(params);
    return rc;
}

static void snapshot_lists_the_running_test_domain(void **state)
{
    (void)state;
    virConnectPtr c = open_test();
    ag_snapshot s;
    char err[256];
    assert_int_equal(ag_domains_collect(c, NULL, "", &s, err, sizeof(err)), 0);
    assert_int_equal(s.n, 1);
    const ag_dom *d = find_by_name(&s, "test");
    assert_non_null(d);
    assert_int_equal(d->state, VIR_DOMAIN_RUNNING);
    assert_string_equal(ag_dom_state_name(d->state), "running");
    assert_int_equal(strlen(d->uuid), 36);
    /* the test driver reports only the state: the rest comes from virDomainGetInfo */
    assert_true(d->vcpus >= 1);
    assert_true(d->memory_mib >= 1);
    json_t *j = ag_snapshot_json(&s);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "state")),
                        "running");
    json_decref(j);
    ag_snapshot_clear(&s);
    virConnectClose(c);
}

static void destroy_then_start_change_the_state(void **state)
{
    (void)state;
    virConnectPtr c = open_test();
    char uuid[VIR_UUID_STRING_BUFLEN], err[256] = "";
    assert_int_equal(test_state(c, uuid), VIR_DOMAIN_RUNNING);
    json_t *res = NULL;
    if (run(c, "domain.destroy", json_pack("{s:s}", "uuid", uuid), &res, err, sizeof(err)) < 0)
        test_fail("destroy: %s", err);
    assert_string_equal(json_string_value(json_object_get(res, "state")), "shutoff");
    assert_true(json_is_true(json_object_get(res, "changed")));
    json_decref(res);
    assert_int_equal(test_state(c, NULL), VIR_DOMAIN_SHUTOFF);

    if (run(c, "domain.start", json_pack("{s:s}", "uuid", uuid), &res, err, sizeof(err)) < 0)
        test_fail("start: %s", err);
    assert_string_equal(json_string_value(json_object_get(res, "state")), "running");
    assert_true(json_is_true(json_object_get(res, "changed")));
    json_decref(res);
    assert_int_equal(test_state(c, NULL), VIR_DOMAIN_RUNNING);
    virConnectClose(c);
}

static void start_of_a_running_domain_succeeds_unchanged(void **state)
{
    (void)state;
    virConnectPtr c = open_test();
    char uuid[VIR_UUID_STRING_BUFLEN], err[256] = "";
    test_state(c, uuid);
    json_t *res = NULL;
    assert_int_equal(
        run(c, "domain.start", json_pack("{s:s}", "uuid", uuid), &res, err, sizeof(err)), 0);
    assert_true(json_is_false(json_object_get(res, "changed")));
    assert_string_equal(json_string_value(json_object_get(res, "state")), "running");
    json_decref(res);
    virConnectClose(c);
}

static void shutdown_and_reboot(void **state)
{
    (void)state;
    virConnectPtr c = open_test();
    char uuid[VIR_UUID_STRING_BUFLEN], err[256] = "";
    test_state(c, uuid);
    json_t *res = NULL;
    if (run(c, "domain.reboot", json_pack("{s:s}", "uuid", uuid), &res, err, sizeof(err)) < 0)
        test_fail("reboot: %s", err);
    json_decref(res);
    assert_int_equal(test_state(c, NULL), VIR_DOMAIN_RUNNING);
    if (run(c, "domain.shutdown", json_pack("{s:s}", "uuid", uuid), &res, err, sizeof(err)) < 0)
        test_fail("shutdown: %s", err);
    json_decref(res);
    /* the test driver's guest obeys ACPI at once */
    assert_int_equal(test_state(c, NULL), VIR_DOMAIN_SHUTOFF);
    /* a stopped domain cannot be rebooted: a failure that says so */
    res = NULL;
    assert_int_equal(
        run(c, "domain.reboot", json_pack("{s:s}", "uuid", uuid), &res, err, sizeof(err)), -1);
    assert_null(res);
    assert_true(test_contains(err, "not running"));
    virConnectClose(c);
}

static void unknown_domain_is_reported_as_not_found(void **state)
{
    (void)state;
    virConnectPtr c = open_test();
    char err[256] = "";
    json_t *res = NULL;
    const char *u = "00000000-0000-0000-0000-000000000001";
    assert_int_equal(
        run(c, "domain.destroy", json_pack("{s:s}", "uuid", u), &res, err, sizeof(err)), -1);
    assert_null(res);
    assert_string_equal(err, "domain not found: 00000000-0000-0000-0000-000000000001");
    virConnectClose(c);
}

static void bad_params_and_unknown_type_fail_with_reasons(void **state)
{
    (void)state;
    virConnectPtr c = open_test();
    char err[256] = "";
    json_t *res = NULL;
    assert_int_equal(run(c, "domain.start", json_object(), &res, err, sizeof(err)), -1);
    assert_string_equal(err, "params.uuid is required");
    assert_int_equal(
        run(c, "domain.start", json_pack("{s:s}", "uuid", "nope"), &res, err, sizeof(err)), -1);
    assert_string_equal(err, "params.uuid is not a UUID");
    assert_int_equal(
        run(c, "domain.start",
            json_pack("{s:s, s:i}", "uuid", "00000000-0000-0000-0000-000000000001", "force", 1),
            &res, err, sizeof(err)),
        -1);
    assert_true(test_contains(err, "unknown parameter 'force'"));
    assert_int_equal(run(c, "domain.migrate", json_object(), &res, err, sizeof(err)), -1);
    assert_string_equal(err, "unknown task type");
    assert_null(res);
    virConnectClose(c);
}

static void without_a_connection_domain_tasks_fail(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *res = NULL;
    assert_int_equal(run(NULL, "domain.start",
                         json_pack("{s:s}", "uuid", "00000000-0000-0000-0000-000000000001"), &res,
                         err, sizeof(err)),
                     -1);
    assert_string_equal(err, "hypervisor connection is down");
}

static int fake_refresh(void *arg, long long *seq, char *err, size_t errlen)
{
    int *calls = arg;
    (*calls)++;
    if (*calls > 1) {
        snprintf(err, errlen, "heartbeat not delivered");
        return -1;
    }
    *seq = 42;
    return 0;
}

static void inventory_refresh_reports_the_full_heartbeat(void **state)
{
    (void)state;
    int calls = 0;
    ag_exec_env env = {NULL, fake_refresh, &calls};
    char err[256] = "";
    json_t *res = NULL;
    json_t *params = json_object();
    assert_int_equal(ag_exec_task(&env, "inventory.refresh", params, &res, err, sizeof(err)), 0);
    assert_int_equal(json_integer_value(json_object_get(res, "heartbeat_seq")), 42);
    json_decref(res);
    res = NULL;
    assert_int_equal(ag_exec_task(&env, "inventory.refresh", params, &res, err, sizeof(err)), -1);
    assert_string_equal(err, "heartbeat not delivered");
    assert_null(res);
    json_decref(params);
}

/* ---- ag_hv: connection, lifecycle events, reconnect ---- */

struct events {
    pthread_mutex_t lock;
    ag_event ev[16];
    int n, wakes;
};

static void got_event(void *arg, ag_event *ev)
{
    struct events *e = arg;
    pthread_mutex_lock(&e->lock);
    if (e->n < 16)
        e->ev[e->n++] = *ev;
    else
        ag_event_clear(ev);
    pthread_mutex_unlock(&e->lock);
}

static void got_wake(void *arg)
{
    struct events *e = arg;
    pthread_mutex_lock(&e->lock);
    e->wakes++;
    pthread_mutex_unlock(&e->lock);
}

static int wait_events(struct events *e, int n)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&e->lock);
        int have = e->n;
        pthread_mutex_unlock(&e->lock);
        if (have >= n) return have;
        usleep(10000);
    }
    return e->n;
}

static void lifecycle_events_arrive_in_protocol_words(void **state)
{
    (void)state;
    struct events e = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ag_hv_ops ops = {got_event, got_wake, &e};
    ag_hv *hv = ag_hv_new(URI, &ops);
    assert_non_null(hv);
    assert_null(ag_hv_conn(hv)); /* not connected before the first tick */
    assert_int_equal(ag_hv_tick(hv, ag_mono_ms(), NULL), 1);
    assert_int_equal(ag_hv_tick(hv, ag_mono_ms(), NULL), 0); /* still up: nothing to do */
    virConnectPtr c = ag_hv_conn(hv);
    assert_non_null(c);
    char uuid[VIR_UUID_STRING_BUFLEN], err[256];
    test_state(c, uuid);
    json_t *res = NULL;
    if (run(c, "domain.destroy", json_pack("{s:s}", "uuid", uuid), &res, err, sizeof(err)) < 0)
        test_fail("destroy: %s", err);
    json_decref(res);
    if (run(c, "domain.start", json_pack("{s:s}", "uuid", uuid), &res, err, sizeof(err)) < 0)
        test_fail("start: %s", err);
    json_decref(res);
    if (wait_events(&e, 2) < 2) test_fail("lifecycle events did not arrive (%d)", e.n);
    pthread_mutex_lock(&e.lock);
    ag_event_resolve_state(&e.ev[0]);
    ag_event_resolve_state(&e.ev[1]);
    assert_string_equal(e.ev[0].uuid, uuid);
    assert_string_equal(e.ev[0].name, "test");
    assert_string_equal(ag_event_name(e.ev[0].event), "stopped");
    assert_string_equal(ag_event_detail(e.ev[0].event, e.ev[0].detail), "destroyed");
    assert_string_equal(ag_event_name(e.ev[1].event), "started");
    assert_string_equal(ag_event_detail(e.ev[1].event, e.ev[1].detail), "booted");
    assert_string_equal(e.ev[1].state, "running");
    assert_int_equal(strlen(e.ev[1].at), 24);
    for (int i = 0; i < e.n; i++)
        ag_event_clear(&e.ev[i]);
    pthread_mutex_unlock(&e.lock);
    virConnectClose(c);
    ag_hv_free(hv);
}

static void lost_connection_is_reopened_on_the_next_tick(void **state)
{
    (void)state;
    struct events e = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ag_hv_ops ops = {got_event, got_wake, &e};
    ag_hv *hv = ag_hv_new(URI, &ops);
    assert_int_equal(ag_hv_tick(hv, ag_mono_ms(), NULL), 1);
    ag_hv_mark_lost(hv, "test says so");
    assert_int_equal(e.wakes, 1);
    assert_null(ag_hv_conn(hv)); /* a lost connection is not lent out */
    assert_int_equal(ag_hv_tick(hv, ag_mono_ms(), NULL), 1);
    virConnectPtr c = ag_hv_conn(hv);
    assert_non_null(c);
    virConnectClose(c);
    ag_hv_free(hv);
}

static void unreachable_hypervisor_backs_off(void **state)
{
    (void)state;
    struct events e = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ag_hv_ops ops = {got_event, got_wake, &e};
    /* a remote URI whose socket does not exist */
    ag_hv *hv = ag_hv_new("test+unix:///default?socket=/nonexistent/bic-libvirt-sock", &ops);
    long long now = 1000000, next = now + 60000;
    assert_int_equal(ag_hv_tick(hv, now, &next), 0);
    assert_int_equal(next, now + 1000); /* 1 s */
    next = now + 60000;
    assert_int_equal(ag_hv_tick(hv, now + 500, &next), 0); /* not yet: no attempt */
    assert_int_equal(next, now + 1000);
    long long t = now + 1000;
    long long waits[] = {2000, 4000, 8000, 16000, 30000, 30000};
    for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
        next = t + 60000;
        assert_int_equal(ag_hv_tick(hv, t, &next), 0);
        assert_int_equal(next - t, waits[i]);
        t = next;
    }
    assert_null(ag_hv_conn(hv));
    ag_hv_free(hv);
}

int main(void)
{
    const char *lv = getenv("BIC_AGENT_LOG");
    ag_log_set_level(lv && ag_log_level_parse(lv) >= 0 ? ag_log_level_parse(lv) : AG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(snapshot_lists_the_running_test_domain),
        cmocka_unit_test(destroy_then_start_change_the_state),
        cmocka_unit_test(start_of_a_running_domain_succeeds_unchanged),
        cmocka_unit_test(shutdown_and_reboot),
        cmocka_unit_test(unknown_domain_is_reported_as_not_found),
        cmocka_unit_test(bad_params_and_unknown_type_fail_with_reasons),
        cmocka_unit_test(without_a_connection_domain_tasks_fail),
        cmocka_unit_test(inventory_refresh_reports_the_full_heartbeat),
        cmocka_unit_test(lifecycle_events_arrive_in_protocol_words),
        cmocka_unit_test(lost_connection_is_reopened_on_the_next_tick),
        cmocka_unit_test(unreachable_hypervisor_backs_off),
    };
    return cmocka_run_group_tests_name("agent_libvirt", tests, NULL, NULL);
}
