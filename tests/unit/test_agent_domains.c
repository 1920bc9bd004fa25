/*
 * test_agent_domains.c - agent/ag_domains.c: the heartbeat delta between two
 * domain snapshots (changed and removed), the state words and the JSON shape;
 * agent/ag_events.c: libvirt lifecycle enums in the protocol's words.
 */
#include "bic_test.h"

#include "ag_domains.h"
#include "ag_events.h"

#define U1 "11111111-1111-1111-1111-111111111111"
#define U2 "22222222-2222-2222-2222-222222222222"
#define U3 "33333333-3333-3333-3333-333333333333"
#define U4 "44444444-4444-4444-4444-444444444444"

static ag_dom dom(const char *uuid, const char *name, int state, long long cpu)
{
    ag_dom d = {.state = state, .vcpus = 2, .memory_mib = 4096, .cpu_time_ns = cpu};
    snprintf(d.uuid, sizeof(d.uuid), "%s", uuid);
    snprintf(d.name, sizeof(d.name), "%s", name);
    return d;
}

/* A snapshot of n domains given in any order (sorted like a collected one). */
static ag_snapshot snap(size_t n, const ag_dom *doms)
{
    ag_snapshot s = {calloc(n ? n : 1, sizeof(ag_dom)), n};
    memcpy(s.d, doms, n * sizeof(ag_dom));
    ag_snapshot_sort(&s);
    return s;
}

static int has_uuid(const json_t *arr, const char *uuid)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *u = json_is_string(v) ? json_string_value(v)
                                          : json_string_value(json_object_get(v, "uuid"));
        if (u && !strcmp(u, uuid)) return 1;
    }
    return 0;
}

static void unchanged_domains_are_left_out_of_the_delta(void **state)
{
    (void)state;
    ag_dom a[] = {dom(U1, "a", VIR_DOMAIN_RUNNING, 100), dom(U2, "b", VIR_DOMAIN_SHUTOFF, 0)};
    ag_snapshot prev = snap(2, a), cur = snap(2, a);
    json_t *removed;
    json_t *changed = ag_snapshot_delta(&prev, &cur, 1000, &removed);
    assert_int_equal(json_array_size(changed), 0);
    assert_int_equal(json_array_size(removed), 0);
    json_decref(changed);
    json_decref(removed);
    ag_snapshot_clear(&prev);
    ag_snapshot_clear(&cur);
}

static void state_change_new_domain_and_removal(void **state)
{
    (void)state;
    ag_dom before[] = {dom(U3, "c", VIR_DOMAIN_RUNNING, 5), dom(U1, "a", VIR_DOMAIN_RUNNING, 100),
                       dom(U2, "b", VIR_DOMAIN_RUNNING, 7)};
    ag_dom after[] = {dom(U4, "d", VIR_DOMAIN_SHUTOFF, 0), dom(U1, "a", VIR_DOMAIN_RUNNING, 100),
                      dom(U2, "b", VIR_DOMAIN_SHUTOFF, 7)};
    ag_snapshot prev = snap(3, before), cur = snap(3, after);
    json_t *removed;
    json_t *changed = ag_snapshot_delta(&prev, &cur, 1000, &removed);
    /* U2 changed state, U4 is new; U1 is the same; U3 is gone */
    assert_int_equal(json_array_size(changed), 2);
    assert_true(has_uuid(changed, U2));
    assert_true(has_uuid(changed, U4));
    assert_false(has_uuid(changed, U1));
    assert_int_equal(json_array_size(removed), 1);
    assert_true(has_uuid(removed, U3));
    json_t *b = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(changed, i,
                       v) if (!strcmp(json_string_value(json_object_get(v, "uuid")), U2)) b = v;
    assert_string_equal(json_string_value(json_object_get(b, "state")), "shutoff");
    json_decref(changed);
    json_decref(removed);
    ag_snapshot_clear(&prev);
    ag_snapshot_clear(&cur);
}

static void each_stat_and_the_name_count_as_a_change(void **state)
{
    (void)state;
    ag_dom base = dom(U1, "a", VIR_DOMAIN_RUNNING, 100);
    for (int field = 0; field < 6; field++) {
        ag_dom now = base;
        switch (field) {
        case 0:
            now.cpu_time_ns++;
            break;
        case 1:
            now.rx_bytes++;
            break;
        case 2:
            now.tx_bytes++;
            break;
        case 3:
            now.vcpus++;
            break;
        case 4:
            now.memory_mib++;
            break;
        case 5:
            snprintf(now.name, sizeof(now.name), "renamed");
            break;
        }
        ag_snapshot prev = snap(1, &base), cur = snap(1, &now);
        json_t *removed;
        json_t *changed = ag_snapshot_delta(&prev, &cur, 1000, &removed);
        if (json_array_size(changed) != 1) test_fail("field %d: change not reported", field);
        json_decref(changed);
        json_decref(removed);
        ag_snapshot_clear(&prev);
        ag_snapshot_clear(&cur);
    }
}

static void empty_previous_snapshot_sends_everything(void **state)
{
    (void)state;
    ag_dom a[] = {dom(U2, "b", VIR_DOMAIN_PAUSED, 1), dom(U1, "a", VIR_DOMAIN_RUNNING, 1)};
    ag_snapshot prev = {0}, cur = snap(2, a);
    json_t *removed;
    json_t *changed = ag_snapshot_delta(&prev, &cur, 1000, &removed);
    assert_int_equal(json_array_size(changed), 2);
    assert_int_equal(json_array_size(removed), 0);
    json_decref(changed);
    json_decref(removed);
    /* and everything gone when nothing is left */
    ag_snapshot none = {0};
    changed = ag_snapshot_delta(&cur, &none, 1000, &removed);
    assert_int_equal(json_array_size(changed), 0);
    assert_int_equal(json_array_size(removed), 2);
    assert_true(has_uuid(removed, U1) && has_uuid(removed, U2));
    json_decref(changed);
    json_decref(removed);
    ag_snapshot_clear(&cur);
}

/* One delta of a single domain: prev (sent at sent_at) -> cur, at now. */
static size_t delta_one(const ag_dom *before, const ag_dom *after, long long sent_at,
                        long long now, ag_dom *out)
{
    ag_dom b = *before;
    b.counters_sent_at = sent_at;
    ag_snapshot prev = snap(1, &b), cur = snap(1, after);
    json_t *removed;
    json_t *changed = ag_snapshot_delta(&prev, &cur, now, &removed);
    assert_non_null(changed);
    size_t n = json_array_size(changed);
    *out = cur.d[0];
    json_decref(changed);
    json_decref(removed);
    ag_snapshot_clear(&prev);
    ag_snapshot_clear(&cur);
    return n;
}

static void counter_only_change_waits_for_the_interval(void **state)
{
    (void)state;
    ag_dom base = dom(U1, "a", VIR_DOMAIN_RUNNING, 100), later = base, out;
    later.cpu_time_ns += 5;
    later.rx_bytes += 6;
    later.tx_bytes += 7;
    /* within 60 s of the last send: left out, cur keeps what CCC was told */
    assert_int_equal(delta_one(&base, &later, 1000, 1000 + AG_COUNTERS_INTERVAL_S - 1, &out), 0);
    assert_int_equal(out.counters_sent_at, 1000);
    assert_int_equal(out.cpu_time_ns, base.cpu_time_ns);
    assert_int_equal(out.rx_bytes, base.rx_bytes);
    assert_int_equal(out.tx_bytes, base.tx_bytes);
    /* 60 s after: sent, stamped, with the new counters */
    assert_int_equal(delta_one(&base, &later, 1000, 1000 + AG_COUNTERS_INTERVAL_S, &out), 1);
    assert_int_equal(out.counters_sent_at, 1000 + AG_COUNTERS_INTERVAL_S);
    assert_int_equal(out.cpu_time_ns, later.cpu_time_ns);
    assert_int_equal(out.tx_bytes, later.tx_bytes);
    /* nothing changed, long after: still nothing sent, stamp kept */
    assert_int_equal(delta_one(&base, &base, 1000, 5000, &out), 0);
    assert_int_equal(out.counters_sent_at, 1000);
}

static void counters_held_back_are_sent_once_the_interval_is_over(void **state)
{
    (void)state;
    /* counters move at t=10 (held back), then stop: sent at t=60 all the same */
    ag_dom a0 = dom(U1, "a", VIR_DOMAIN_PAUSED, 100), a1 = a0;
    a1.cpu_time_ns = 200;
    ag_snapshot acked = snap(1, &a0);
    ag_snapshot_mark_sent(&acked, 0);
    for (long long t = 10; t <= 70; t += 10) {
        ag_snapshot cur = snap(1, &a1);
        json_t *removed;
        json_t *changed = ag_snapshot_delta(&acked, &cur, t, &removed);
        size_t expect = t == AG_COUNTERS_INTERVAL_S ? 1 : 0;
        if (json_array_size(changed) != expect)
            test_fail("t=%lld: %zu sent", t, json_array_size(changed));
        json_decref(changed);
        json_decref(removed);
        ag_snapshot_move(&acked, &cur);
    }
    assert_int_equal(acked.d[0].cpu_time_ns, 200);
    assert_int_equal(acked.d[0].counters_sent_at, AG_COUNTERS_INTERVAL_S);
    ag_snapshot_clear(&acked);
}

static void state_name_vcpus_memory_changes_are_sent_at_once(void **state)
{
    (void)state;
    ag_dom base = dom(U1, "a", VIR_DOMAIN_RUNNING, 100);
    for (int field = 0; field < 4; field++) {
        ag_dom now = base, out;
        now.cpu_time_ns += 1000; /* counters moved too */
        if (field == 0) now.state = VIR_DOMAIN_SHUTOFF;
        if (field == 1) snprintf(now.name, sizeof(now.name), "renamed");
        if (field == 2) now.vcpus++;
        if (field == 3) now.memory_mib++;
        if (delta_one(&base, &now, 1000, 1001, &out) != 1)
            test_fail("field %d: change not sent at once", field);
        assert_int_equal(out.counters_sent_at, 1001);
        assert_int_equal(out.cpu_time_ns, now.cpu_time_ns);
    }
}

static void new_domain_is_sent_and_stamped(void **state)
{
    (void)state;
    ag_dom a[] = {dom(U1, "a", VIR_DOMAIN_RUNNING, 100)};
    ag_dom b[] = {dom(U1, "a", VIR_DOMAIN_RUNNING, 100), dom(U2, "b", VIR_DOMAIN_RUNNING, 5)};
    ag_snapshot prev = snap(1, a), cur = snap(2, b);
    ag_snapshot_mark_sent(&prev, 1000);
    json_t *removed;
    json_t *changed = ag_snapshot_delta(&prev, &cur, 1010, &removed);
    assert_int_equal(json_array_size(changed), 1);
    assert_true(has_uuid(changed, U2));
    assert_int_equal(ag_snapshot_find(&cur, U2)->counters_sent_at, 1010);
    assert_int_equal(ag_snapshot_find(&cur, U1)->counters_sent_at, 1000);
    json_decref(changed);
    json_decref(removed);
    ag_snapshot_clear(&prev);
    ag_snapshot_clear(&cur);
}

static void full_heartbeat_stamps_every_domain(void **state)
{
    (void)state;
    ag_dom a[] = {dom(U1, "a", VIR_DOMAIN_RUNNING, 100), dom(U2, "b", VIR_DOMAIN_SHUTOFF, 0),
                  dom(U3, "c", VIR_DOMAIN_PAUSED, 7)};
    a[0].counters_sent_at = 3;
    ag_snapshot s = snap(3, a);
    ag_snapshot_mark_sent(&s, 4242);
    for (size_t i = 0; i < s.n; i++) assert_int_equal(s.d[i].counters_sent_at, 4242);
    /* the next delta holds counter-only changes back from that time */
    ag_dom later[] = {dom(U1, "a", VIR_DOMAIN_RUNNING, 200), dom(U2, "b", VIR_DOMAIN_SHUTOFF, 0),
                      dom(U3, "c", VIR_DOMAIN_PAUSED, 7)};
    ag_snapshot cur = snap(3, later);
    json_t *removed;
    json_t *changed = ag_snapshot_delta(&s, &cur, 4242 + 10, &removed);
    assert_int_equal(json_array_size(changed), 0);
    json_decref(changed);
    json_decref(removed);
    ag_snapshot_clear(&s);
    ag_snapshot_clear(&cur);
}

static void snapshot_move_and_find(void **state)
{
    (void)state;
    ag_dom a[] = {dom(U3, "c", 1, 0), dom(U1, "a", 1, 0), dom(U2, "b", 1, 0)};
    ag_snapshot src = snap(3, a), dst = snap(1, a);
    ag_snapshot_move(&dst, &src);
    assert_int_equal(src.n, 0);
    assert_null(src.d);
    assert_int_equal(dst.n, 3);
    assert_string_equal(ag_snapshot_find(&dst, U2)->name, "b");
    assert_null(ag_snapshot_find(&dst, U4));
    assert_null(ag_snapshot_find(&src, U1));
    ag_snapshot_clear(&dst);
}

static void dom_json_has_exactly_the_protocol_keys(void **state)
{
    (void)state;
    ag_dom d = dom(U1, "sales-001", VIR_DOMAIN_RUNNING, 123456789);
    d.rx_bytes = 1;
    d.tx_bytes = 2;
    json_t *j = ag_dom_json(&d);
    assert_int_equal(json_object_size(j), 8);
    assert_string_equal(json_string_value(json_object_get(j, "uuid")), U1);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "sales-001");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    assert_int_equal(json_integer_value(json_object_get(j, "vcpus")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "memory_mib")), 4096);
    assert_int_equal(json_integer_value(json_object_get(j, "cpu_time_ns")), 123456789);
    assert_int_equal(json_integer_value(json_object_get(j, "rx_bytes")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "tx_bytes")), 2);
    json_decref(j);
}

static void every_libvirt_state_has_its_protocol_word(void **state)
{
    (void)state;
    const struct {
        int st;
        const char *word;
    } cases[] = {
        {VIR_DOMAIN_NOSTATE, "nostate"},
        {VIR_DOMAIN_RUNNING, "running"},
        {VIR_DOMAIN_BLOCKED, "blocked"},
        {VIR_DOMAIN_PAUSED, "paused"},
        {VIR_DOMAIN_SHUTDOWN, "shutdown"},
        {VIR_DOMAIN_SHUTOFF, "shutoff"},
        {VIR_DOMAIN_CRASHED, "crashed"},
        {VIR_DOMAIN_PMSUSPENDED, "pmsuspended"},
        {-1, "nostate"},
        {999, "nostate"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(ag_dom_state_name(cases[i].st), cases[i].word);
}

static void lifecycle_events_and_details_in_words(void **state)
{
    (void)state;
    const struct {
        int ev, detail;
        const char *event, *word, *st;
    } cases[] = {
        {VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED, "started", "booted", "running"},
        {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED, "stopped", "destroyed",
         "shutoff"},
        {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN, "stopped", "shutdown",
         "shutoff"},
        {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_CRASHED, "stopped", "crashed",
         "crashed"},
        {VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_PAUSED, "suspended", "paused",
         "paused"},
        {VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_UNPAUSED, "resumed", "unpaused",
         "running"},
        {VIR_DOMAIN_EVENT_SHUTDOWN, VIR_DOMAIN_EVENT_SHUTDOWN_GUEST, "shutdown", "guest",
         "shutdown"},
        {VIR_DOMAIN_EVENT_SHUTDOWN, VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED, "shutdown", "finished",
         "shutoff"},
        {VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_ADDED, "defined", "added", "shutoff"},
        {VIR_DOMAIN_EVENT_UNDEFINED, VIR_DOMAIN_EVENT_UNDEFINED_REMOVED, "undefined", "removed",
         "nostate"},
        {VIR_DOMAIN_EVENT_PMSUSPENDED, VIR_DOMAIN_EVENT_PMSUSPENDED_DISK, "pmsuspended", "disk",
         "pmsuspended"},
        {VIR_DOMAIN_EVENT_CRASHED, VIR_DOMAIN_EVENT_CRASHED_PANICKED, "crashed", "panicked",
         "crashed"},
        {VIR_DOMAIN_EVENT_STARTED, 99, "started", "unknown", "running"},
        {99, 0, "unknown", "unknown", "nostate"},
        {-1, -1, "unknown", "unknown", "nostate"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_string_equal(ag_event_name(cases[i].ev), cases[i].event);
        assert_string_equal(ag_event_detail(cases[i].ev, cases[i].detail), cases[i].word);
        assert_string_equal(ag_event_state(cases[i].ev, cases[i].detail), cases[i].st);
    }
}

static void event_json_has_exactly_the_protocol_keys(void **state)
{
    (void)state;
    ag_event ev = {.uuid = U1,
                   .name = "sales-001",
                   .event = VIR_DOMAIN_EVENT_STARTED,
                   .detail = VIR_DOMAIN_EVENT_STARTED_BOOTED,
                   .state = "running",
                   .at = "2026-11-24T08:00:00.123Z"};
    json_t *j = ag_event_json(&ev);
    assert_int_equal(json_object_size(j), 6);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "started");
    assert_string_equal(json_string_value(json_object_get(j, "detail")), "booted");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    assert_string_equal(json_string_value(json_object_get(j, "at")), "2026-11-24T08:00:00.123Z");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unchanged_domains_are_left_out_of_the_delta),
        cmocka_unit_test(state_change_new_domain_and_removal),
        cmocka_unit_test(each_stat_and_the_name_count_as_a_change),
        cmocka_unit_test(empty_previous_snapshot_sends_everything),
        cmocka_unit_test(counter_only_change_waits_for_the_interval),
        cmocka_unit_test(counters_held_back_are_sent_once_the_interval_is_over),
        cmocka_unit_test(state_name_vcpus_memory_changes_are_sent_at_once),
        cmocka_unit_test(new_domain_is_sent_and_stamped),
        cmocka_unit_test(full_heartbeat_stamps_every_domain),
        cmocka_unit_test(snapshot_move_and_find),
        cmocka_unit_test(dom_json_has_exactly_the_protocol_keys),
        cmocka_unit_test(every_libvirt_state_has_its_protocol_word),
        cmocka_unit_test(lifecycle_events_and_details_in_words),
        cmocka_unit_test(event_json_has_exactly_the_protocol_keys),
    };
    return cmocka_run_group_tests_name("agent_domains", tests, NULL, NULL);
}
