/*
 * test_agent_tasks.c - agent/ag_tasks.c: accepted tasks are recorded under
 * <state_dir>/tasks, run once, and a task id delivered again (also after a
 * restart) is not run again but has its stored outcome reported again.
 *
 * The manager runs without its worker thread: ag_tasks_work_one() runs the
 * queued jobs here, with a fake executor and a fake reporter.
 */
#include "bic_test.h"

#include <ftw.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ag_log.h"
#include "ag_tasks.h"

struct fake {
    int runs;
    int fail_next;        /* the executor fails with "boom" */
    int report_status[8]; /* what report answers, call by call (0: 204) */
    int nreports;
    json_t *reports; /* [[id, body], ...] */
};

static int fake_execute(void *arg, const char *type, const json_t *params, json_t **result,
                        char *err, size_t errlen)
{
    struct fake *f = arg;
    f->runs++;
    if (f->fail_next) {
        f->fail_next = 0;
        snprintf(err, errlen, "domain not found: %s",
                 json_string_value(json_object_get(params, "uuid")));
        return -1;
    }
    *result = json_pack("{s:s, s:i}", "type", type, "run", f->runs);
    return 0;
}

static int fake_report(void *arg, long long id, const json_t *body)
{
    struct fake *f = arg;
    json_array_append_new(f->reports, json_pack("[I, O]", (json_int_t)id, body));
    int n = f->nreports++;
    int st = n < 8 ? f->report_status[n] : 0;
    return st ? st : 204;
}

struct fixture {
    char dir[64];
    struct fake fake;
    ag_task_ops ops;
    ag_tasks *t;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/bic-agent-tasks-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    f->fake.reports = json_array();
    f->ops = (ag_task_ops){fake_execute, fake_report, &f->fake};
    char err[256];
    f->t = ag_tasks_new(f->dir, &f->ops, err, sizeof(err));
    if (!f->t) {
        print_error("ag_tasks_new: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ag_tasks_free(f->t);
    json_decref(f->fake.reports);
    nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static ag_task_req req(long long id, const char *type)
{
    ag_task_req r = {.task_id = id, .server_id = 17, .issued_at = 1};
    snprintf(r.type, sizeof(r.type), "%s", type);
    snprintf(r.nonce, sizeof(r.nonce), "nonce-%lld-xxxxxxxxxxxxxxxxx", id);
    r.params = json_pack("{s:s}", "uuid", "6695eb01-f6a4-8304-79aa-97f2502e193f");
    return r;
}

static enum ag_submit submit(ag_tasks *t, long long id, const char *type)
{
    ag_task_req r = req(id, type);
    enum ag_submit s = ag_tasks_submit(t, &r);
    ag_task_req_clear(&r);
    return s;
}

static void run_all(ag_tasks *t)
{
    while (ag_tasks_work_one(t))
        ;
}

/* The state of the i-th report (negative i counts from the end). */
static const char *report_state(struct fake *f, int i, long long *id)
{
    size_t n = json_array_size(f->reports);
    json_t *r = json_array_get(f->reports, i < 0 ? n + (size_t)i : (size_t)i);
    if (!r) test_fail("no report %d (there are %zu)", i, n);
    if (id) *id = json_integer_value(json_array_get(r, 0));
    return json_string_value(json_object_get(json_array_get(r, 1), "state"));
}

static json_t *report_body(struct fake *f, int i)
{
    size_t n = json_array_size(f->reports);
    return json_array_get(json_array_get(f->reports, i < 0 ? n + (size_t)i : (size_t)i), 1);
}

static const char *record_state(ag_tasks *t, long long id, json_t **keep)
{
    *keep = ag_tasks_record(t, id);
    return json_string_value(json_object_get(*keep, "state"));
}

static void new_task_is_recorded_run_and_reported(void **state)
{
    struct fixture *f = *state;
    json_t *rec;
    assert_int_equal(submit(f->t, 981, "domain.start"), AG_SUBMIT_QUEUED);
    assert_string_equal(record_state(f->t, 981, &rec), "accepted");
    json_decref(rec);
    assert_int_equal(ag_tasks_work_one(f->t), 1);
    assert_int_equal(f->fake.runs, 1);
    assert_int_equal(json_array_size(f->fake.reports), 2);
    long long id;
    assert_string_equal(report_state(&f->fake, 0, &id), "running");
    assert_int_equal(id, 981);
    assert_string_equal(report_state(&f->fake, 1, NULL), "succeeded");
    json_t *res = json_object_get(report_body(&f->fake, 1), "result");
    assert_string_equal(json_string_value(json_object_get(res, "type")), "domain.start");
    assert_int_equal(json_object_size(report_body(&f->fake, 0)), 1); /* {"state":"running"} */
    assert_string_equal(record_state(f->t, 981, &rec), "succeeded");
    assert_non_null(json_object_get(rec, "finished_at"));
    json_decref(rec);
    assert_int_equal(ag_tasks_work_one(f->t), 0);
}

static void task_id_delivered_again_is_not_run_again(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(submit(f->t, 5, "domain.destroy"), AG_SUBMIT_QUEUED);
    run_all(f->t);
    assert_int_equal(f->fake.runs, 1);
    json_t *first = json_deep_copy(report_body(&f->fake, -1));
    assert_int_equal(submit(f->t, 5, "domain.destroy"), AG_SUBMIT_KNOWN);
    run_all(f->t);
    assert_int_equal(f->fake.runs, 1);
    assert_int_equal(json_array_size(f->fake.reports), 3);
    /* the same outcome, result and all */
    assert_true(json_equal(report_body(&f->fake, -1), first));
    json_decref(first);
}

static void task_delivered_again_while_queued_runs_once(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(submit(f->t, 6, "domain.start"), AG_SUBMIT_QUEUED);
    assert_int_equal(submit(f->t, 6, "domain.start"), AG_SUBMIT_KNOWN);
    assert_int_equal(submit(f->t, 6, "domain.start"), AG_SUBMIT_KNOWN);
    run_all(f->t);
    assert_int_equal(f->fake.runs, 1);
    assert_string_equal(report_state(&f->fake, -1, NULL), "succeeded");
}

static void stored_outcome_survives_a_restart(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(submit(f->t, 7, "domain.reboot"), AG_SUBMIT_QUEUED);
    run_all(f->t);
    json_t *outcome = json_deep_copy(report_body(&f->fake, -1));
    /* a new agent process on the same state directory */
    ag_tasks_free(f->t);
    char err[256];
    f->t = ag_tasks_new(f->dir, &f->ops, err, sizeof(err));
    assert_non_null(f->t);
    assert_int_equal(submit(f->t, 7, "domain.reboot"), AG_SUBMIT_KNOWN);
    run_all(f->t);
    assert_int_equal(f->fake.runs, 1);
    assert_true(json_equal(report_body(&f->fake, -1), outcome));
    json_decref(outcome);
}

static void failure_is_stored_and_reported_again_with_its_error(void **state)
{
    struct fixture *f = *state;
    f->fake.fail_next = 1;
    assert_int_equal(submit(f->t, 8, "domain.start"), AG_SUBMIT_QUEUED);
    run_all(f->t);
    json_t *last = report_body(&f->fake, -1);
    assert_string_equal(json_string_value(json_object_get(last, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(last, "error")),
                        "domain not found: 6695eb01-f6a4-8304-79aa-97f2502e193f");
    assert_null(json_object_get(last, "result"));
    assert_int_equal(submit(f->t, 8, "domain.start"), AG_SUBMIT_KNOWN);
    run_all(f->t);
    assert_int_equal(f->fake.runs, 1);
    assert_string_equal(json_string_value(json_object_get(report_body(&f->fake, -1), "error")),
                        "domain not found: 6695eb01-f6a4-8304-79aa-97f2502e193f");
}

static void task_interrupted_by_a_restart_is_failed_not_resumed(void **state)
{
    struct fixture *f = *state;
    /* accepted, then the agent stops before running it */
    assert_int_equal(submit(f->t, 9, "domain.shutdown"), AG_SUBMIT_QUEUED);
    ag_tasks_free(f->t);
    char err[256];
    f->t = ag_tasks_new(f->dir, &f->ops, err, sizeof(err));
    assert_non_null(f->t);
    assert_int_equal(submit(f->t, 9, "domain.shutdown"), AG_SUBMIT_KNOWN);
    run_all(f->t);
    assert_int_equal(f->fake.runs, 0);
    json_t *last = report_body(&f->fake, -1);
    assert_string_equal(json_string_value(json_object_get(last, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(last, "error")), AG_TASK_INTERRUPTED);
    json_t *rec;
    assert_string_equal(record_state(f->t, 9, &rec), "failed");
    json_decref(rec);
}

static void records_are_private_files(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(submit(f->t, 10, "domain.start"), AG_SUBMIT_QUEUED);
    run_all(f->t);
    char path[200];
    struct stat st;
    snprintf(path, sizeof(path), "%s/tasks/10.json", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/tasks", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/tasks/10.json.tmp", f->dir);
    assert_int_not_equal(access(path, F_OK), 0);
}

static void full_queue_is_busy_and_runs_nothing_extra(void **state)
{
    struct fixture *f = *state;
    for (long long id = 1; id <= AG_TASKS_QUEUE_MAX; id++)
        assert_int_equal(submit(f->t, 1000 + id, "domain.start"), AG_SUBMIT_QUEUED);
    assert_int_equal(submit(f->t, 5000, "domain.start"), AG_SUBMIT_BUSY);
    json_t *rec = ag_tasks_record(f->t, 5000);
    assert_null(rec); /* not recorded: CCC sends it again later and it runs then */
    assert_int_equal(ag_tasks_work_one(f->t), 1);
    assert_int_equal(submit(f->t, 5000, "domain.start"), AG_SUBMIT_QUEUED);
    run_all(f->t);
    assert_int_equal(f->fake.runs, AG_TASKS_QUEUE_MAX + 1);
}

static void status_report_is_retried_then_given_up(void **state)
{
    struct fixture *f = *state;
    /* running: unreachable, 503, then 204; final: 204 */
    f->fake.report_status[0] = -1;
    f->fake.report_status[1] = 503;
    assert_int_equal(submit(f->t, 11, "domain.start"), AG_SUBMIT_QUEUED);
    run_all(f->t);
    assert_int_equal(f->fake.nreports, 4);
    assert_string_equal(report_state(&f->fake, 2, NULL), "running");
    assert_string_equal(report_state(&f->fake, 3, NULL), "succeeded");
}

static void status_404_is_not_retried(void **state)
{
    struct fixture *f = *state;
    f->fake.report_status[0] = 404;
    f->fake.report_status[1] = 404;
    assert_int_equal(submit(f->t, 12, "domain.start"), AG_SUBMIT_QUEUED);
    run_all(f->t);
    assert_int_equal(f->fake.nreports, 2); /* running once, succeeded once */
    assert_int_equal(f->fake.runs, 1);
}

static void old_records_are_pruned(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(submit(f->t, 20, "domain.start"), AG_SUBMIT_QUEUED);
    assert_int_equal(submit(f->t, 21, "domain.start"), AG_SUBMIT_QUEUED);
    run_all(f->t);
    char path[200];
    snprintf(path, sizeof(path), "%s/tasks/20.json", f->dir);
    struct timeval old[2] = {{time(NULL) - 8 * 86400, 0}, {time(NULL) - 8 * 86400, 0}};
    assert_int_equal(utimes(path, old), 0);
    assert_int_equal(ag_tasks_prune(f->t, 7 * 86400), 1);
    json_t *rec = ag_tasks_record(f->t, 20);
    assert_null(rec);
    rec = ag_tasks_record(f->t, 21);
    assert_non_null(rec);
    json_decref(rec);
}

int main(void)
{
    const char *lv = getenv("BIC_AGENT_LOG");
    ag_log_set_level(lv && ag_log_level_parse(lv) >= 0 ? ag_log_level_parse(lv) : AG_LOG_ERROR);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(new_task_is_recorded_run_and_reported),
        T(task_id_delivered_again_is_not_run_again),
        T(task_delivered_again_while_queued_runs_once),
        T(stored_outcome_survives_a_restart),
        T(failure_is_stored_and_reported_again_with_its_error),
        T(task_interrupted_by_a_restart_is_failed_not_resumed),
        T(records_are_private_files),
        T(full_queue_is_busy_and_runs_nothing_extra),
        T(status_report_is_retried_then_given_up),
        T(status_404_is_not_retried),
        T(old_records_are_pruned),
    };
    return cmocka_run_group_tests_name("agent_tasks", tests, NULL, NULL);
}
