/*
 * ag_tasks.h - accepted tasks: persisted, run once by a worker thread, reported.
 *
 * Every accepted task id has a record <state_dir>/tasks/<id>.json
 *   {"task_id","type","state","result"|"error","accepted_at","finished_at"}
 * with state accepted → running → succeeded | failed, written (atomically, 0600)
 * before each step, so a task id is never run twice, not even across restarts.
 * A task that was accepted or running when the agent stopped is never resumed:
 * when CCC delivers it again it is recorded and reported as failed
 * ("interrupted: the agent stopped before the task finished").
 */
#ifndef BIC_AG_TASKS_H
#define BIC_AG_TASKS_H

#include <jansson.h>
#include <stddef.h>

#include "ag_verify.h"

#define AG_TASKS_QUEUE_MAX  256
#define AG_TASK_INTERRUPTED "interrupted: the agent stopped before the task finished"

typedef struct ag_task_ops {
    /* Runs a task: 0 with *result (a new object), or -1 with err. */
    int (*execute)(void *arg, const char *type, const json_t *params, json_t **result, char *err,
                   size_t errlen);
    /*
     * Sends body to POST /api/v1/agent/tasks/{id}/status. Returns the HTTP status,
     * or -1 when CCC could not be reached.
     */
    int (*report)(void *arg, long long id, const json_t *body);
    void *arg;
    /*
     * Optional, for managers without a worker thread: a job was queued, so
     * ag_tasks_work_one() has work. Called by ag_tasks_submit without its lock.
     */
    void (*ready)(void *arg);
} ag_task_ops;

typedef struct ag_tasks ag_tasks;

/*
 * A task manager keeping its records in <state_dir>/tasks (created, 0700). No
 * thread runs until ag_tasks_start(); without one, ag_tasks_work_one() runs
 * queued jobs in the caller (tests). NULL with err on failure.
 */
ag_tasks *ag_tasks_new(const char *state_dir, const ag_task_ops *ops, char *err, size_t errlen);

/* Starts the worker thread. Returns 0 or -1 with err. */
int ag_tasks_start(ag_tasks *t, char *err, size_t errlen);

/*
 * Asks the worker, and whoever is in ag_tasks_work_one(), to finish soon: the
 * running job completes without waiting to retry its report, and the worker
 * takes no further job. Thread-safe.
 */
void ag_tasks_stop(ag_tasks *t);

/* Stops the worker (the job it is running finishes first) and frees everything. */
void ag_tasks_free(ag_tasks *t);

enum ag_submit {
    AG_SUBMIT_QUEUED, /* new: recorded as accepted and queued to run */
    AG_SUBMIT_KNOWN,  /* already accepted: not run again; its state is reported again */
    AG_SUBMIT_BUSY,   /* the queue is full: answer 503, CCC sends it again later */
    AG_SUBMIT_ERROR,  /* the record could not be written: answer 503 */
};

/* Accepts a verified task (req is borrowed; params are referenced). Thread-safe. */
enum ag_submit ag_tasks_submit(ag_tasks *t, const ag_task_req *req);

/*
 * Runs the next queued job in the calling thread. Returns 1 when a job ran, 0
 * when the queue was empty. Only for managers without a worker thread, and
 * from one thread at a time (jobs of one manager run in order).
 */
int ag_tasks_work_one(ag_tasks *t);

/* The stored record of task id (a new reference), or NULL when there is none. */
json_t *ag_tasks_record(ag_tasks *t, long long id);

/* Deletes records last written more than max_age_s ago. Returns how many. */
size_t ag_tasks_prune(ag_tasks *t, long long max_age_s);

#endif
