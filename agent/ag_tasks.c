#include "ag_tasks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ag_log.h"
#include "ag_util.h"

enum job_kind { JOB_RUN, JOB_REPORT };

struct job {
    enum job_kind kind;
    long long id;
    char type[AG_TASK_TYPE_MAX + 1];
    json_t *params; /* JOB_RUN only */
};

struct ag_tasks {
    char dir[PATH_MAX - 64]; /* room for "/<id>.json" in a PATH_MAX buffer */
    ag_task_ops ops;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job queue[AG_TASKS_QUEUE_MAX];
    size_t head, count;
    /* ids queued to run or running in this process */
    long long inflight[AG_TASKS_QUEUE_MAX + 1];
    size_t ninflight;
    int stop, started;
    pthread_t thread;
};

static void record_path(const ag_tasks *t, long long id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%lld.json", t->dir, id);
}

json_t *ag_tasks_record(ag_tasks *t, long long id)
{
    char path[PATH_MAX];
    record_path(t, id, path, sizeof(path));
    size_t len;
    AG_AUTOFREE char *data = ag_file_read(path, 1 << 20, &len);
    if (!data) return NULL;
    json_t *r = json_loadb(data, len, 0, NULL);
    if (r && !json_is_object(r)) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* Writes the record; returns 0 or -1 (logged). */
static int record_write(ag_tasks *t, long long id, json_t *rec)
{
    char path[PATH_MAX];
    record_path(t, id, path, sizeof(path));
    if (ag_json_write_atomic(path, rec) < 0) {
        AG_ERROR("task %lld: cannot write %s: %s", id, path, strerror(errno));
        return -1;
    }
    return 0;
}

ag_tasks *ag_tasks_new(const char *state_dir, const ag_task_ops *ops, char *err, size_t errlen)
{
    ag_tasks *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (snprintf(t->dir, sizeof(t->dir), "%s/tasks", state_dir) >= (int)sizeof(t->dir)) {
        snprintf(err, errlen, "state_dir is too long");
        free(t);
        return NULL;
    }
    if (ag_mkdir_p(t->dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", t->dir, strerror(errno));
        free(t);
        return NULL;
    }
    t->ops = *ops;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    return t;
}

static int inflight_has(const ag_tasks *t, long long id)
{
    for (size_t i = 0; i < t->ninflight; i++)
        if (t->inflight[i] == id) return 1;
    return 0;
}

static void inflight_remove(ag_tasks *t, long long id)
{
    for (size_t i = 0; i < t->ninflight; i++)
        if (t->inflight[i] == id) {
            t->inflight[i] = t->inflight[--t->ninflight];
            return;
        }
}

static void push(ag_tasks *t, struct job j)
{
    t->queue[(t->head + t->count) % AG_TASKS_QUEUE_MAX] = j;
    t->count++;
    pthread_cond_signal(&t->cond);
}

static json_t *new_record(const ag_task_req *req, const char *state)
{
    char now[32];
    ag_now_iso(now, sizeof(now));
    return json_pack("{s:I, s:s, s:s, s:s}", "task_id", (json_int_t)req->task_id, "type", req->type,
                     "state", state, "accepted_at", now);
}

static int final_state(const char *s)
{
    return s && (!strcmp(s, "succeeded") || !strcmp(s, "failed"));
}

/* The part of ag_tasks_submit that runs with the lock held. */
static enum ag_submit submit_locked(ag_tasks *t, const ag_task_req *req)
{
    if (t->count == AG_TASKS_QUEUE_MAX) return AG_SUBMIT_BUSY;
    struct job j = {.id = req->task_id};
    snprintf(j.type, sizeof(j.type), "%s", req->type);
    int inflight = inflight_has(t, req->task_id);
    AG_AUTOJSON json_t *rec = ag_tasks_record(t, req->task_id);
    if (rec || inflight) {
        const char *state = json_string_value(json_object_get(rec, "state"));
        if (rec && !final_state(state) && !inflight) {
            /* accepted or running in an agent process that is gone: never resumed */
            char now[32];
            ag_now_iso(now, sizeof(now));
            json_object_set_new(rec, "state", json_string("failed"));
            json_object_set_new(rec, "error", json_string(AG_TASK_INTERRUPTED));
            json_object_set_new(rec, "finished_at", json_string(now));
            record_write(t, req->task_id, rec);
            AG_WARN("task %lld (%s) was interrupted by an agent restart: reported failed",
                    req->task_id, j.type);
        }
        j.kind = JOB_REPORT;
        push(t, j);
        return AG_SUBMIT_KNOWN;
    }
    AG_AUTOJSON json_t *fresh = new_record(req, "accepted");
    if (!fresh || record_write(t, req->task_id, fresh) < 0) return AG_SUBMIT_ERROR;
    j.kind = JOB_RUN;
    j.params = json_incref(req->params);
    t->inflight[t->ninflight++] = req->task_id;
    push(t, j);
    return AG_SUBMIT_QUEUED;
}

enum ag_submit ag_tasks_submit(ag_tasks *t, const ag_task_req *req)
{
    pthread_mutex_lock(&t->lock);
    enum ag_submit r = submit_locked(t, req);
    pthread_mutex_unlock(&t->lock);
    if ((r == AG_SUBMIT_QUEUED || r == AG_SUBMIT_KNOWN) && t->ops.ready) t->ops.ready(t->ops.arg);
    return r;
}

/*
 * Sends one status, trying again twice (after 1 s and 2 s) while CCC cannot be
 * reached or answers 5xx/401; a stop cuts the waiting short.
 */
static void report(ag_tasks *t, long long id, const json_t *body)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        if (attempt) {
            pthread_mutex_lock(&t->lock);
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += attempt;
            while (!t->stop && pthread_cond_timedwait(&t->cond, &t->lock, &until) == 0)
                ;
            int stop = t->stop;
            pthread_mutex_unlock(&t->lock);
            if (stop) break;
        }
        int status = t->ops.report(t->ops.arg, id, body);
        if (status >= 200 && status < 300) return;
        if (status == 404) {
            AG_WARN("task %lld: CCC says it is not this server's task (404)", id);
            return;
        }
        AG_WARN("task %lld: status report failed (%s %d)", id, status < 0 ? "error" : "HTTP",
                status);
    }
    AG_WARN("task %lld: status not delivered; CCC will send the task again", id);
}

static void run_job(ag_tasks *t, struct job *j)
{
    AG_AUTOJSON json_t *rec = ag_tasks_record(t, j->id);
    if (!rec) {
        AG_ERROR("task %lld: its record is gone", j->id);
        return;
    }
    json_object_set_new(rec, "state", json_string("running"));
    if (record_write(t, j->id, rec) < 0) {
        /* without a record a restart could run it again: do not start */
        json_object_set_new(rec, "state", json_string("failed"));
        json_object_set_new(rec, "error", json_string("cannot record the task's state"));
    } else {
        AG_AUTOJSON json_t *running = json_pack("{s:s}", "state", "running");
        if (running) report(t, j->id, running);
        AG_INFO("task %lld: %s running", j->id, j->type);
        AG_AUTOJSON json_t *result = NULL;
        char err[512] = "";
        if (t->ops.execute(t->ops.arg, j->type, j->params, &result, err, sizeof(err)) == 0) {
            json_object_set_new(rec, "state", json_string("succeeded"));
            json_object_set_new(rec, "result", result ? AG_STEAL(result) : json_object());
            AG_INFO("task %lld: %s succeeded", j->id, j->type);
        } else {
            json_object_set_new(rec, "state", json_string("failed"));
            json_object_set_new(rec, "error", json_string(*err ? err : "failed"));
            AG_WARN("task %lld: %s failed: %s", j->id, j->type, err);
        }
    }
    char now[32];
    ag_now_iso(now, sizeof(now));
    json_object_set_new(rec, "finished_at", json_string(now));
    record_write(t, j->id, rec);
    pthread_mutex_lock(&t->lock);
    inflight_remove(t, j->id);
    pthread_mutex_unlock(&t->lock);
    j->kind = JOB_REPORT;
}

/* The status body for a stored record: what CCC should hear again. */
static json_t *status_body(ag_tasks *t, long long id, int inflight)
{
    AG_AUTOJSON json_t *rec = ag_tasks_record(t, id);
    const char *state = json_string_value(json_object_get(rec, "state"));
    if (!final_state(state)) return inflight ? json_pack("{s:s}", "state", "running") : NULL;
    if (!strcmp(state, "succeeded")) {
        json_t *res = json_object_get(rec, "result");
        return json_pack("{s:s, s:o}", "state", "succeeded", "result",
                         json_is_object(res) ? json_incref(res) : json_object());
    }
    const char *e = json_string_value(json_object_get(rec, "error"));
    return json_pack("{s:s, s:s}", "state", "failed", "error", e ? e : "failed");
}

static void do_job(ag_tasks *t, struct job *j)
{
    if (j->kind == JOB_RUN) run_job(t, j);
    json_decref(j->params);
    j->params = NULL;
    pthread_mutex_lock(&t->lock);
    int inflight = inflight_has(t, j->id);
    pthread_mutex_unlock(&t->lock);
    AG_AUTOJSON json_t *body = status_body(t, j->id, inflight);
    if (body) report(t, j->id, body);
}

static int pop(ag_tasks *t, struct job *j)
{
    if (!t->count) return 0;
    *j = t->queue[t->head];
    t->head = (t->head + 1) % AG_TASKS_QUEUE_MAX;
    t->count--;
    return 1;
}

int ag_tasks_work_one(ag_tasks *t)
{
    struct job j;
    pthread_mutex_lock(&t->lock);
    int have = pop(t, &j);
    pthread_mutex_unlock(&t->lock);
    if (have) do_job(t, &j);
    return have;
}

static void *worker(void *arg)
{
    ag_tasks *t = arg;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        struct job j;
        while (!t->stop && !t->count)
            pthread_cond_wait(&t->cond, &t->lock);
        if (t->stop) break;
        pop(t, &j);
        pthread_mutex_unlock(&t->lock);
        do_job(t, &j);
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int ag_tasks_start(ag_tasks *t, char *err, size_t errlen)
{
    int rc = pthread_create(&t->thread, NULL, worker, t);
    if (rc) {
        snprintf(err, errlen, "cannot start the task worker: %s", strerror(rc));
        return -1;
    }
    t->started = 1;
    return 0;
}

void ag_tasks_stop(ag_tasks *t)
{
    pthread_mutex_lock(&t->lock);
    t->stop = 1;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

void ag_tasks_free(ag_tasks *t)
{
    if (!t) return;
    ag_tasks_stop(t);
    if (t->started) pthread_join(t->thread, NULL);
    struct job j;
    while (pop(t, &j))
        json_decref(j.params); /* queued runs stay "accepted": interrupted if sent again */
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

size_t ag_tasks_prune(ag_tasks *t, long long max_age_s)
{
    DIR *d = opendir(t->dir);
    if (!d) return 0;
    size_t n = 0;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json")) continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (now - st.st_mtime <= max_age_s) continue;
        long long id = strtoll(e->d_name, NULL, 10);
        pthread_mutex_lock(&t->lock);
        int busy = inflight_has(t, id);
        pthread_mutex_unlock(&t->lock);
        if (!busy && unlinkat(dirfd(d), e->d_name, 0) == 0) n++;
    }
    closedir(d);
    return n;
}
