/*
 * test_agent_fleet.c - agent/ag_fleet.c, ag_sched.c and the fleet's parts of
 * ag_listener.c and ag_agent.c: how member i's identity is derived, how the
 * shared listener routes /s/<i>/v1/tasks, how heartbeats are spread over the
 * interval, and the generated test-driver files parsed back by libvirt (each
 * open of one is a hypervisor of its own, also side by side in one process).
 */
#include "bic_test.h"

#include <curl/curl.h>
#include <ftw.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ag_agent.h"
#include "ag_config.h"
#include "ag_fleet.h"
#include "ag_hv.h"
#include "ag_listener.h"
#include "ag_log.h"
#include "ag_sched.h"
#include "ag_util.h"

static char dir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/bic-agent-fleet-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* A base configuration as `bic-agent --fleet` resolves it. */
static void base_config(ag_config *cfg, const char *machine_id, const char *hostname)
{
    char err[256];
    assert_int_equal(ag_config_load(cfg, NULL, err, sizeof(err)), 0);
    assert_int_equal(ag_config_set(cfg, "ccc_url", "https://ccc.example:443/"), 0);
    assert_int_equal(ag_config_set(cfg, "token", "bbt_x"), 0);
    assert_int_equal(ag_config_set(cfg, "state_dir", dir), 0);
    assert_int_equal(ag_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(ag_config_set(cfg, "root_prefix", "/nonexistent-root"), 0);
    assert_int_equal(ag_config_set(cfg, "machine_id", machine_id), 0);
    assert_int_equal(ag_config_set(cfg, "hostname", hostname), 0);
    if (ag_fleet_resolve(cfg, err, sizeof(err)) < 0) test_fail("ag_fleet_resolve: %s", err);
}

/* ---- identities ---- */

static void member_identity_is_derived_from_the_base(void **state)
{
    (void)state;
    ag_config base, m;
    base_config(&base, "0123456789abcdef0123456789abcdef", "bench");
    char err[256];
    assert_int_equal(
        ag_fleet_member_config(&base, 17, "http://10.0.0.5:7443", &m, err, sizeof(err)), 0);
    assert_string_equal(m.machine_id, "0123456789abcdef0123456789abcdef-fleet-17");
    assert_string_equal(m.hostname, "bench-17");
    char want[256];
    snprintf(want, sizeof(want), "%s/17", dir);
    assert_string_equal(m.state_dir, want);
    snprintf(want, sizeof(want), "test://%s/17/hv.xml", dir);
    assert_string_equal(m.libvirt_uri, want);
    assert_true(!strncmp(m.libvirt_uri, "test:///", 8)); /* an absolute path */
    assert_string_equal(m.advertise_url, "http://10.0.0.5:7443/s/17");
    /* everything else is the base's, resolved */
    assert_string_equal(m.ccc_url, "https://ccc.example:443");
    assert_string_equal(m.token, "bbt_x");
    assert_string_equal(m.listen_host, "127.0.0.1");
    ag_config_free(&m);

    /* two members never share anything that identifies them */
    ag_config a, b;
    assert_int_equal(ag_fleet_member_config(&base, 1, "http://h:1", &a, err, sizeof(err)), 0);
    assert_int_equal(ag_fleet_member_config(&base, 10, "http://h:1", &b, err, sizeof(err)), 0);
    assert_string_not_equal(a.machine_id, b.machine_id);
    assert_string_not_equal(a.hostname, b.hostname);
    assert_string_not_equal(a.state_dir, b.state_dir);
    assert_string_not_equal(a.libvirt_uri, b.libvirt_uri);
    assert_string_not_equal(a.advertise_url, b.advertise_url);
    ag_config_free(&a);
    ag_config_free(&b);
    ag_config_free(&base);
}

static void machine_id_falls_back_to_the_hostname_and_state_dir_becomes_absolute(void **state)
{
    (void)state;
    char err[256], cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    ag_config base;
    assert_int_equal(ag_config_load(&base, NULL, err, sizeof(err)), 0);
    ag_config_set(&base, "ccc_url", "https://ccc");
    ag_config_set(&base, "token", "bbt_x");
    ag_config_set(&base, "state_dir", "rel/state");
    ag_config_set(&base, "listen", "0.0.0.0:0");
    ag_config_set(&base, "root_prefix", "/nonexistent-root"); /* no etc/machine-id */
    ag_config_set(&base, "hostname", "bs1");
    int rc = ag_fleet_resolve(&base, err, sizeof(err));
    assert_int_equal(chdir(cwd), 0);
    if (rc < 0) test_fail("ag_fleet_resolve: %s", err);
    assert_string_equal(base.machine_id, "bs1");
    char want[PATH_MAX];
    snprintf(want, sizeof(want), "%s/rel/state", dir);
    assert_string_equal(base.state_dir, want);
    ag_config m;
    assert_int_equal(ag_fleet_member_config(&base, 0, "http://h:1", &m, err, sizeof(err)), 0);
    assert_string_equal(m.machine_id, "bs1-fleet-0");
    assert_string_equal(m.hostname, "bs1-0");
    ag_config_free(&m);

    /* a member whose derived machine id is too long says which member */
    ag_config_set(&base, "machine_id",
                  "0123456789012345678901234567890123456789012345678901234567");
    assert_int_equal(ag_fleet_member_config(&base, 123, "http://h:1", &m, err, sizeof(err)), -1);
    assert_true(test_contains(err, "fleet member 123"));
    assert_true(test_contains(err, "machine_id"));
    ag_config_free(&m);
    ag_config_free(&base);
}

/* ---- the shared listener ---- */

static void listener_routes_by_member_index(void **state)
{
    (void)state;
    /* one agent: only /v1/tasks */
    assert_int_equal(ag_listener_route("/v1/tasks", 0, NULL), 0);
    assert_int_equal(ag_listener_route("/s/0/v1/tasks", 0, NULL), -1);
    /* a fleet of 1000: /s/<i>/v1/tasks, i canonical and in range */
    assert_int_equal(ag_listener_route("/s/0/v1/tasks", 1000, NULL), 0);
    assert_int_equal(ag_listener_route("/s/7/v1/tasks", 1000, NULL), 7);
    assert_int_equal(ag_listener_route("/s/999/v1/tasks", 1000, NULL), 999);
    /* calls: /v1/call beside /v1/tasks, with their kind */
    ag_listener_kind kind = AG_LISTENER_TASK;
    assert_int_equal(ag_listener_route("/v1/call", 0, &kind), 0);
    assert_int_equal(kind, AG_LISTENER_CALL);
    assert_int_equal(ag_listener_route("/v1/tasks", 0, &kind), 0);
    assert_int_equal(kind, AG_LISTENER_TASK);
    assert_int_equal(ag_listener_route("/s/7/v1/call", 1000, &kind), 7);
    assert_int_equal(kind, AG_LISTENER_CALL);
    assert_int_equal(ag_listener_route("/s/7/v1/call", 0, NULL), -1);
    const char *bad[] = {"/v1/tasks",
                         "/s/1000/v1/tasks",
                         "/s/01/v1/tasks",
                         "/s/00/v1/tasks",
                         "/s//v1/tasks",
                         "/s/-1/v1/tasks",
                         "/s/+1/v1/tasks",
                         "/s/1/v1/task",
                         "/s/1/v1/tasks/",
                         "/s/1/v1/tasks/2",
                         "/s/1",
                         "/s/1x/v1/tasks",
                         "/S/1/v1/tasks",
                         "s/1/v1/tasks",
                         "/s/1/../2/v1/tasks",
                         "/s/99999999999/v1/tasks",
                         "/v1/call",
                         "/s/1/v1/calls",
                         "/s/1/v1/call/",
                         "/s/01/v1/call",
                         "/s/1000/v1/call",
                         ""};
    for (size_t i = 0; i < AG_NELEM(bad); i++)
        if (ag_listener_route(bad[i], 1000, NULL) != -1) test_fail("'%s' was routed", bad[i]);
}

struct seen {
    pthread_mutex_t lock;
    int calls;
    size_t route;
    ag_listener_kind kind;
};

static int record_route(void *arg, size_t route, ag_listener_kind kind, const char *body,
                        size_t len, const char *sig, char **answer)
{
    (void)body;
    (void)len;
    (void)sig;
    struct seen *s = arg;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    s->route = route;
    s->kind = kind;
    pthread_mutex_unlock(&s->lock);
    *answer = strdup("{\"accepted\":true}");
    return 202;
}

static long post(int port, const char *path)
{
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    fclose(sink);
    curl_easy_cleanup(c);
    return status;
}

static void shared_listener_hands_each_path_to_its_member(void **state)
{
    (void)state;
    char err[256];
    struct seen s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ag_listener *l = ag_listener_bind("127.0.0.1", 0, err, sizeof(err));
    assert_non_null(l);
    int port = ag_listener_port(l);
    assert_true(port > 0);
    assert_int_equal(ag_listener_serve(l, 3, record_route, &s, err, sizeof(err)), 0);
    assert_int_equal(post(port, "/s/2/v1/tasks"), 202);
    assert_int_equal(s.route, 2);
    assert_int_equal(post(port, "/s/0/v1/tasks"), 202);
    assert_int_equal(s.route, 0);
    assert_int_equal(s.kind, AG_LISTENER_TASK);
    assert_int_equal(s.calls, 2);
    assert_int_equal(post(port, "/s/1/v1/call"), 202);
    assert_int_equal(s.route, 1);
    assert_int_equal(s.kind, AG_LISTENER_CALL);
    assert_int_equal(s.calls, 3);
    assert_int_equal(post(port, "/s/3/v1/tasks"), 404);
    assert_int_equal(post(port, "/v1/tasks"), 404);
    assert_int_equal(post(port, "/s/01/v1/tasks"), 404);
    assert_int_equal(post(port, "/v1/call"), 404);
    assert_int_equal(s.calls, 3);
    /* serving twice is refused */
    assert_int_equal(ag_listener_serve(l, 3, record_route, &s, err, sizeof(err)), -1);
    ag_listener_stop(l);

    /* bound but never served: stopping releases the port */
    l = ag_listener_bind("127.0.0.1", 0, err, sizeof(err));
    assert_non_null(l);
    port = ag_listener_port(l);
    ag_listener_stop(l);
    l = ag_listener_bind("127.0.0.1", port, err, sizeof(err));
    assert_non_null(l);
    ag_listener_stop(l);
}

/* ---- spreading heartbeats ---- */

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void heartbeats_of_a_fleet_are_spread_evenly_over_the_interval(void **state)
{
    (void)state;
    enum { N = 1000 };
    const long long iv = 10000;
    static long long first[N];
    /* each member's first heartbeat ends at a different, unrelated time */
    for (size_t i = 0; i < N; i++) {
        long long phase = ag_agent_slot_phase(i, N, iv);
        assert_int_equal(phase, (long long)i * 10); /* 10 ms apart */
        long long sent = 5000000 + (long long)((i * 7919) % 3000);
        long long next = ag_agent_slot_next(sent, phase, iv);
        /* on its slot, between half and one and a half intervals later */
        assert_int_equal(((next - phase) % iv + iv) % iv, 0);
        assert_true(next >= sent + iv / 2 && next < sent + iv + iv / 2);
        /* from then on, exactly one interval apart */
        long long again = ag_agent_slot_next(next, phase, iv);
        assert_int_equal(again - next, iv);
        first[i] = next % iv;
    }
    /* within any interval: one heartbeat every 10 ms, never two at once */
    qsort(first, N, sizeof(first[0]), cmp_ll);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(first[i], (long long)i * 10);
    /* in any window of 1 s, 100 of the 1000 */
    for (long long w = 0; w < iv; w += 250) {
        int in = 0;
        for (size_t i = 0; i < N; i++)
            in += first[i] >= w && first[i] < w + 1000;
        assert_int_equal(in, w + 1000 <= iv ? 100 : (int)((iv - w) / 10));
    }
    /* one agent (no slots) and odd sizes */
    assert_int_equal(ag_agent_slot_phase(0, 0, iv), 0);
    assert_int_equal(ag_agent_slot_phase(2, 3, 1000), 666);
    assert_int_equal(ag_agent_slot_next(0, 0, 1000), 1000); /* half an interval: 500 -> 1000 */
    assert_int_equal(ag_agent_slot_next(500, 0, 1000), 1000);
    assert_int_equal(ag_agent_slot_next(501, 0, 1000), 2000);
}

static void schedule_gives_the_earliest_member_first(void **state)
{
    (void)state;
    enum { N = 200 };
    ag_sched *s = ag_sched_new(N);
    assert_non_null(s);
    assert_int_equal(ag_sched_peek(s, NULL), -1);
    assert_int_equal(ag_sched_pop(s), -1);
    /* ties: the lower number first, so a fleet starts in member order */
    for (size_t i = 0; i < 5; i++)
        ag_sched_put(s, 4 - i, 0);
    for (long i = 0; i < 5; i++)
        assert_int_equal(ag_sched_pop(s), i);
    /* random puts, moves and pops against a plain array */
    static long long due[N];
    static int queued[N];
    unsigned seed = 12345;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        size_t item = (seed >> 8) % N;
        long long t = (seed >> 4) % 1000;
        switch ((seed >> 20) % 3) {
        case 0:
            ag_sched_put(s, item, t);
            due[item] = t, queued[item] = 1;
            break;
        case 1: {
            int moved = ag_sched_earlier(s, item, t);
            assert_int_equal(moved, queued[item] && t < due[item]);
            if (moved) due[item] = t;
            break;
        }
        default: {
            long want = -1;
            for (size_t i = 0; i < N; i++)
                if (queued[i] && (want < 0 || due[i] < due[want])) want = (long)i;
            long long at = -1;
            assert_int_equal(ag_sched_peek(s, &at), want);
            assert_int_equal(ag_sched_pop(s), want);
            if (want >= 0) {
                assert_int_equal(at, due[want]);
                queued[want] = 0;
            }
        }
        }
        size_t count = 0;
        for (size_t i = 0; i < N; i++)
            count += (size_t)queued[i];
        assert_int_equal(ag_sched_count(s), count);
        assert_int_equal(ag_sched_queued(s, item), queued[item]);
    }
    ag_sched_free(s);
}

/* ---- the generated hypervisors ---- */

static void domain_uuids_are_stable_and_distinct(void **state)
{
    (void)state;
    char a[VIR_UUID_STRING_BUFLEN], b[VIR_UUID_STRING_BUFLEN];
    ag_fleet_domain_uuid("m-fleet-1", 5, a);
    ag_fleet_domain_uuid("m-fleet-1", 5, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '8'); /* version 8 */
    assert_true(strchr("89ab", a[19]) != NULL);
    ag_fleet_domain_uuid("m-fleet-1", 6, b);
    assert_string_not_equal(a, b);
    ag_fleet_domain_uuid("m-fleet-10", 5, b);
    assert_string_not_equal(a, b);
}

/* Writes member i's test-driver file as the fleet does and returns its URI in uri. */
static void member_hv(const ag_config *base, size_t i, size_t desktops, char *uri, size_t len)
{
    char err[256];
    ag_config m;
    assert_int_equal(ag_fleet_member_config(base, i, "http://h:1", &m, err, sizeof(err)), 0);
    assert_int_equal(ag_mkdir_p(m.state_dir, 0700), 0);
    char *xml = ag_fleet_hv_xml(m.machine_id, m.hostname, desktops);
    assert_non_null(xml);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/hv.xml", m.state_dir);
    assert_int_equal(ag_file_write_atomic(path, xml, strlen(xml)), 0);
    free(xml);
    snprintf(uri, len, "%s", m.libvirt_uri);
    ag_config_free(&m);
}

static int running_count(virConnectPtr c)
{
    return virConnectNumOfDomains(c);
}

static void test_driver_file_parses_back_with_d_running_domains(void **state)
{
    (void)state;
    ag_config base;
    base_config(&base, "0123456789abcdef0123456789abcdef", "bs&<x>/y");
    char uri0[PATH_MAX + 16], uri1[PATH_MAX + 16];
    member_hv(&base, 0, 100, uri0, sizeof(uri0));
    member_hv(&base, 1, 100, uri1, sizeof(uri1));

    virConnectPtr c0 = virConnectOpen(uri0);
    if (!c0) test_fail("virConnectOpen %s: %s", uri0, virGetLastErrorMessage());
    assert_int_equal(running_count(c0), 100);
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(c0, &doms, 0);
    assert_int_equal(n, 100);
    /* names from the sanitised host name, unique UUIDs that are the derived ones */
    char names[100][64], uuids[100][VIR_UUID_STRING_BUFLEN];
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "%s", virDomainGetName(doms[i]));
        assert_int_equal(virDomainGetUUIDString(doms[i], uuids[i]), 0);
        virDomainInfo info;
        assert_int_equal(virDomainGetInfo(doms[i], &info), 0);
        assert_int_equal(info.state, VIR_DOMAIN_RUNNING);
        assert_int_equal(info.maxMem, AG_FLEET_DOMAIN_MIB * 1024);
        assert_int_equal(info.nrVirtCpu, AG_FLEET_DOMAIN_VCPUS);
        virDomainFree(doms[i]);
    }
    free(doms);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            assert_string_not_equal(names[i], names[j]);
            assert_string_not_equal(uuids[i], uuids[j]);
        }
    virDomainPtr d = virDomainLookupByName(c0, "bs__x__y-0-d042");
    assert_non_null(d);
    char want[VIR_UUID_STRING_BUFLEN], got[VIR_UUID_STRING_BUFLEN];
    ag_fleet_domain_uuid("0123456789abcdef0123456789abcdef-fleet-0", 42, want);
    virDomainGetUUIDString(d, got);
    assert_string_equal(got, want);

    /* member 1 is another hypervisor: its own domains, its own state */
    virConnectPtr c1 = virConnectOpen(uri1);
    assert_non_null(c1);
    assert_null(virDomainLookupByUUIDString(c1, want));
    virResetLastError();
    assert_int_equal(running_count(c1), 100);
    assert_int_equal(virDomainDestroy(d), 0);
    assert_int_equal(running_count(c0), 99);
    assert_int_equal(running_count(c1), 100);
    /* even a second open of the same file, side by side, is a hypervisor of its own */
    virConnectPtr c0b = virConnectOpen(uri0);
    assert_non_null(c0b);
    assert_int_equal(running_count(c0b), 100);
    virDomainFree(d);
    virConnectClose(c0b);
    virConnectClose(c1);
    virConnectClose(c0);

    /* D = 0 is a hypervisor without domains */
    char uri2[PATH_MAX + 16];
    member_hv(&base, 2, 0, uri2, sizeof(uri2));
    virConnectPtr c2 = virConnectOpen(uri2);
    assert_non_null(c2);
    assert_int_equal(virConnectNumOfDefinedDomains(c2) + running_count(c2), 0);
    virConnectClose(c2);
    ag_config_free(&base);
}

/* ---- a fleet set up without CCC ---- */

static void fleet_prepares_every_member_and_refuses_a_second_one(void **state)
{
    (void)state;
    ag_config base;
    base_config(&base, "fleet-unit-machine", "fu");
    ag_config_set(&base, "ccc_url", "http://127.0.0.1:9"); /* never reached: not run */
    char err[512];
    ag_fleet_opts o = {.members = 3, .desktops = 4};
    ag_fleet *f = ag_fleet_new(&base, &o, err, sizeof(err));
    if (!f) test_fail("ag_fleet_new: %s", err);
    assert_true(ag_fleet_listen_port(f) > 0);
    assert_int_equal(ag_fleet_enrolled(f), 0);
    for (int i = 0; i < 3; i++) {
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%d/hv.xml", dir, i);
        assert_int_equal(stat(path, &st), 0);
        snprintf(path, sizeof(path), "%s/%d/agent.lock", dir, i);
        assert_int_equal(stat(path, &st), 0);
        snprintf(path, sizeof(path), "%s/%d/tasks", dir, i);
        assert_int_equal(stat(path, &st), 0);
    }
    /* not enrolled: the listener answers for member 1 like a lone agent would */
    char url[64];
    snprintf(url, sizeof(url), "/s/1/v1/tasks");
    assert_int_equal(post(ag_fleet_listen_port(f), url), 503);
    assert_int_equal(post(ag_fleet_listen_port(f), "/s/3/v1/tasks"), 404);
    /* the same state directories are taken */
    ag_fleet *twin = ag_fleet_new(&base, &o, err, sizeof(err));
    assert_null(twin);
    assert_true(test_contains(err, "in use by another bic-agent"));
    ag_fleet_stop(f);
    ag_fleet_free(f);

    /* bad sizes */
    ag_fleet_opts none = {.members = 0}, many = {.members = 1, .desktops = 10001};
    assert_null(ag_fleet_new(&base, &none, err, sizeof(err)));
    assert_null(ag_fleet_new(&base, &many, err, sizeof(err)));
    assert_true(test_contains(err, "--desktops"));
    ag_config_free(&base);
}

int main(void)
{
    const char *lv = getenv("BIC_AGENT_LOG");
    ag_log_set_level(lv && ag_log_level_parse(lv) >= 0 ? ag_log_level_parse(lv) : AG_LOG_ERROR);
    ag_hv_quiet();
    curl_global_init(CURL_GLOBAL_DEFAULT);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(member_identity_is_derived_from_the_base),
        T(machine_id_falls_back_to_the_hostname_and_state_dir_becomes_absolute),
        T(listener_routes_by_member_index),
        T(shared_listener_hands_each_path_to_its_member),
        T(heartbeats_of_a_fleet_are_spread_evenly_over_the_interval),
        T(schedule_gives_the_earliest_member_first),
        T(domain_uuids_are_stable_and_distinct),
        T(test_driver_file_parses_back_with_d_running_domains),
        T(fleet_prepares_every_member_and_refuses_a_second_one),
    };
    int rc = cmocka_run_group_tests_name("agent_fleet", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
