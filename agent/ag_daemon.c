#include "ag_daemon.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ag_agent.h"
#include "ag_http.h"
#include "ag_listener.h"
#include "ag_log.h"
#include "ag_state.h"
#include "ag_util.h"
#include "version.h"

struct ag_daemon {
    const ag_config *cfg;
    char listen_url[AG_URL_MAX + 1];

    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    int stop, wake;
    atomic_int stopping; /* stop, readable without the lock: aborts requests in flight */

    ag_http *http;        /* the loop only */
    ag_http *worker_http; /* the task worker only */
    ag_listener *listener;
    ag_agent *agent;
};

static void on_wake(void *arg)
{
    ag_daemon *d = arg;
    pthread_mutex_lock(&d->lock);
    d->wake = 1;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static int on_task(void *arg, size_t route, ag_listener_kind kind, const char *body, size_t len,
                   const char *sig, char **answer)
{
    (void)route;
    if (kind == AG_LISTENER_CALL) return ag_agent_on_call(arg, body, len, sig, answer);
    return ag_agent_on_task(arg, body, len, sig, answer);
}

ag_daemon *ag_daemon_new(const ag_config *cfg, char *err, size_t errlen)
{
    ag_daemon *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);

    d->listener = ag_listener_bind(cfg->listen_host, cfg->listen_port, err, errlen);
    if (!d->listener) goto fail;
    ag_config_listen_url(cfg, ag_listener_port(d->listener), d->listen_url, sizeof(d->listen_url));
    d->http = ag_http_new(cfg->ccc_url, cfg->ca_file, &d->stopping);
    d->worker_http = ag_http_new(cfg->ccc_url, cfg->ca_file, &d->stopping);
    if (!d->http || !d->worker_http) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    ag_agent_opts opts = {.listen_url = d->listen_url, .wake = on_wake, .arg = d};
    if (!(d->agent = ag_agent_new(cfg, &opts, err, errlen))) goto fail;
    if (ag_agent_start_worker(d->agent, d->worker_http, err, errlen) < 0) goto fail;
    if (ag_listener_serve(d->listener, 0, on_task, d->agent, err, errlen) < 0) goto fail;
    return d;
fail:
    ag_daemon_free(d);
    return NULL;
}

void ag_daemon_stop(ag_daemon *d)
{
    pthread_mutex_lock(&d->lock);
    d->stop = 1;
    atomic_store(&d->stopping, 1);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    ag_agent_stop(d->agent);
}

int ag_daemon_listen_port(const ag_daemon *d)
{
    return ag_listener_port(d->listener);
}

const char *ag_daemon_listen_url(const ag_daemon *d)
{
    return d->listen_url;
}

int ag_daemon_run(ag_daemon *d)
{
    const ag_config *cfg = d->cfg;
    if (strncmp(cfg->ccc_url, "https://", 8))
        AG_WARN("ccc_url is not https: the credential travels in clear (tests only)");
    AG_INFO("bic-agent %s (%s): ccc %s, libvirt %s, tasks on %s, state in %s, machine %s",
            BIC_VERSION, BIC_GIT_REV, cfg->ccc_url, cfg->libvirt_uri, d->listen_url, cfg->state_dir,
            cfg->machine_id);
    for (;;) {
        pthread_mutex_lock(&d->lock);
        int stop = d->stop;
        d->wake = 0;
        pthread_mutex_unlock(&d->lock);
        if (stop) break;

        long long next = ag_agent_step(d->agent, d->http, ag_mono_ms());

        pthread_mutex_lock(&d->lock);
        if (!d->stop && !d->wake && next > ag_mono_ms()) {
            struct timespec until = {next / 1000, (next % 1000) * 1000000L};
            pthread_cond_timedwait(&d->cond, &d->lock, &until);
        }
        pthread_mutex_unlock(&d->lock);
    }
    AG_INFO("bic-agent stopping");
    return 0;
}

void ag_daemon_free(ag_daemon *d)
{
    if (!d) return;
    /* no new tasks, then let the running one finish, then the hypervisor */
    ag_listener_stop(d->listener);
    ag_agent_free(d->agent);
    ag_http_free(d->http);
    ag_http_free(d->worker_http);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
