#include "ag_hv.h"

#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_log.h"
#include "ag_util.h"

/* ---- libvirt's default event loop: one thread per process, shared by managers ---- */

static pthread_mutex_t loop_lock = PTHREAD_MUTEX_INITIALIZER;
static int loop_users, loop_registered;
static atomic_int loop_stop;
static pthread_t loop_thread;

static void *loop_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&loop_stop))
        if (virEventRunDefaultImpl() < 0) {
            AG_ERROR("libvirt event loop: %s", virGetLastErrorMessage());
            break;
        }
    return NULL;
}

static void loop_wake_cb(int timer, void *opaque)
{
    (void)opaque;
    virEventRemoveTimeout(timer);
}

static int loop_acquire(void)
{
    int rc = 0;
    pthread_mutex_lock(&loop_lock);
    if (!loop_registered) {
        /* must come before the first connection is opened; can be done only once */
        if (virEventRegisterDefaultImpl() < 0) {
            AG_ERROR("virEventRegisterDefaultImpl: %s", virGetLastErrorMessage());
            rc = -1;
            goto out;
        }
        loop_registered = 1;
    }
    if (loop_users++ == 0) {
        atomic_store(&loop_stop, 0);
        if (pthread_create(&loop_thread, NULL, loop_main, NULL)) {
            loop_users--;
            rc = -1;
        }
    }
out:
    pthread_mutex_unlock(&loop_lock);
    return rc;
}

static void loop_release(void)
{
    pthread_mutex_lock(&loop_lock);
    if (--loop_users == 0) {
        atomic_store(&loop_stop, 1);
        /* adding a timer interrupts the loop's poll; the timer removes itself */
        virEventAddTimeout(0, loop_wake_cb, NULL, NULL);
        pthread_join(loop_thread, NULL);
    }
    pthread_mutex_unlock(&loop_lock);
}

static void silent(void *data, virErrorPtr err)
{
    (void)data;
    (void)err;
}

static void init_once(void)
{
    /*
     * libxml2 (which libvirt parses every domain and test-driver file with) sets up its
     * globals lazily and not thread-safely: a fleet opening many connections at once
     * leaked its global mutex. Initialise it here, once, before any thread needs it.
     */
    xmlInitParser();
    if (virInitialize() < 0) AG_ERROR("virInitialize failed");
    virSetErrorFunc(NULL, silent);
}

void ag_hv_quiet(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
}

/* ---- the manager ---- */

struct ag_hv {
    char *uri;
    ag_hv_ops ops;
    pthread_mutex_t lock;
    virConnectPtr conn; /* NULL while down */
    int lost;           /* set by the close callback or ag_hv_mark_lost */
    int event_cb;       /* lifecycle callback id, -1 when none */
    int graphics_cb;    /* graphics (console) callback id, -1 when none */
    int close_cb;       /* close callback registered */
    unsigned backoff_s;
    long long next_try_ms;
    int failures_logged;
};

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    (void)conn;
    ag_hv *hv = opaque;
    ag_event ev;
    ag_event_fill(&ev, dom, event, detail);
    hv->ops.on_event(hv->ops.arg, &ev);
    return 0;
}

static void on_graphics(virConnectPtr conn, virDomainPtr dom, int phase,
                        const virDomainEventGraphicsAddress *local,
                        const virDomainEventGraphicsAddress *remote, const char *scheme,
                        const virDomainEventGraphicsSubject *subject, void *opaque)
{
    (void)conn;
    (void)local;
    (void)scheme;
    (void)subject;
    ag_hv *hv = opaque;
    if (remote && remote->family == VIR_DOMAIN_EVENT_GRAPHICS_ADDRESS_UNIX) return;
    ag_event ev;
    ag_event_fill_console(&ev, dom, phase, remote);
    hv->ops.on_event(hv->ops.arg, &ev);
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    (void)conn;
    static const char *const reasons[] = {"error", "end of file", "keepalive timeout",
                                          "client closed"};
    ag_hv *hv = opaque;
    pthread_mutex_lock(&hv->lock);
    hv->lost = 1;
    pthread_mutex_unlock(&hv->lock);
    AG_WARN("libvirt connection closed: %s",
            reason >= 0 && reason < (int)AG_NELEM(reasons) ? reasons[reason] : "unknown");
    hv->ops.wake(hv->ops.arg);
}

ag_hv *ag_hv_new(const char *uri, const ag_hv_ops *ops)
{
    ag_hv_quiet();
    if (loop_acquire() < 0) return NULL;
    ag_hv *hv = calloc(1, sizeof(*hv));
    if (!hv || !(hv->uri = strdup(uri))) {
        free(hv);
        loop_release();
        return NULL;
    }
    hv->ops = *ops;
    hv->event_cb = hv->graphics_cb = -1;
    pthread_mutex_init(&hv->lock, NULL);
    return hv;
}

/* Drops the connection (deregistering the callbacks). Called by the owner only. */
static void disconnect(ag_hv *hv)
{
    pthread_mutex_lock(&hv->lock);
    virConnectPtr c = hv->conn;
    hv->conn = NULL;
    hv->lost = 0;
    pthread_mutex_unlock(&hv->lock);
    if (!c) return;
    /* these fail on a dead connection; the registrations die with it */
    if (hv->event_cb >= 0) virConnectDomainEventDeregisterAny(c, hv->event_cb);
    if (hv->graphics_cb >= 0) virConnectDomainEventDeregisterAny(c, hv->graphics_cb);
    if (hv->close_cb) virConnectUnregisterCloseCallback(c, on_close);
    hv->event_cb = hv->graphics_cb = -1;
    hv->close_cb = 0;
    virConnectClose(c);
}

void ag_hv_free(ag_hv *hv)
{
    if (!hv) return;
    disconnect(hv);
    /* joins the event thread: no callback with hv runs after this */
    loop_release();
    pthread_mutex_destroy(&hv->lock);
    free(hv->uri);
    free(hv);
}

static int try_connect(ag_hv *hv)
{
    virConnectPtr c = virConnectOpen(hv->uri);
    if (!c) {
        if (!hv->failures_logged++ || hv->backoff_s >= AG_HV_BACKOFF_CAP_S)
            AG_WARN("libvirt %s: %s (next try in %u s)", hv->uri, virGetLastErrorMessage(),
                    ag_backoff_next(hv->backoff_s, AG_HV_BACKOFF_CAP_S));
        return -1;
    }
    /* a remote daemon that stops answering is noticed within ~20 s (not all drivers) */
    if (virConnectSetKeepAlive(c, 5, 3) < 0) virResetLastError();
    hv->close_cb = virConnectRegisterCloseCallback(c, on_close, hv, NULL) == 0;
    if (!hv->close_cb) virResetLastError();
    hv->event_cb = virConnectDomainEventRegisterAny(
        c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), hv, NULL);
    if (hv->event_cb < 0)
        AG_WARN("libvirt %s: no lifecycle events: %s", hv->uri, virGetLastErrorMessage());
    /* not every driver has console events (the test driver has none): nothing to miss */
    hv->graphics_cb = virConnectDomainEventRegisterAny(
        c, NULL, VIR_DOMAIN_EVENT_ID_GRAPHICS, VIR_DOMAIN_EVENT_CALLBACK(on_graphics), hv, NULL);
    if (hv->graphics_cb < 0) virResetLastError();
    pthread_mutex_lock(&hv->lock);
    hv->conn = c;
    hv->lost = 0;
    pthread_mutex_unlock(&hv->lock);
    AG_INFO("libvirt %s: connected", hv->uri);
    hv->failures_logged = 0;
    return 0;
}

int ag_hv_tick(ag_hv *hv, long long now_ms, long long *next_ms)
{
    pthread_mutex_lock(&hv->lock);
    int lost = hv->lost, up = hv->conn != NULL;
    pthread_mutex_unlock(&hv->lock);
    if (up && !lost) {
        virConnectPtr c = ag_hv_conn(hv);
        int alive = c ? virConnectIsAlive(c) : 0;
        if (c) virConnectClose(c);
        if (alive == 1) return 0;
        lost = 1;
    }
    if (up && lost) {
        disconnect(hv);
        hv->backoff_s = 0;
        hv->next_try_ms = now_ms; /* first reconnect at once, then back off */
    }
    if (now_ms < hv->next_try_ms) {
        if (next_ms && hv->next_try_ms < *next_ms) *next_ms = hv->next_try_ms;
        return 0;
    }
    if (try_connect(hv) == 0) {
        hv->backoff_s = 0;
        return 1;
    }
    hv->backoff_s = ag_backoff_next(hv->backoff_s, AG_HV_BACKOFF_CAP_S);
    hv->next_try_ms = now_ms + 1000LL * hv->backoff_s;
    if (next_ms && hv->next_try_ms < *next_ms) *next_ms = hv->next_try_ms;
    return 0;
}

virConnectPtr ag_hv_conn(ag_hv *hv)
{
    pthread_mutex_lock(&hv->lock);
    virConnectPtr c = hv->lost ? NULL : hv->conn;
    if (c && virConnectRef(c) < 0) c = NULL;
    pthread_mutex_unlock(&hv->lock);
    return c;
}

void ag_hv_mark_lost(ag_hv *hv, const char *why)
{
    pthread_mutex_lock(&hv->lock);
    int was = hv->conn && !hv->lost;
    if (hv->conn) hv->lost = 1;
    pthread_mutex_unlock(&hv->lock);
    if (was) {
        AG_WARN("libvirt connection lost: %s", why);
        hv->ops.wake(hv->ops.arg);
    }
}

int ag_hv_error_is_fatal(void)
{
    virErrorPtr e = virGetLastError();
    if (!e) return 0;
    return e->code == VIR_ERR_NO_CONNECT || e->code == VIR_ERR_INVALID_CONN ||
           e->code == VIR_ERR_RPC || e->code == VIR_ERR_SYSTEM_ERROR ||
           e->code == VIR_ERR_AUTH_CANCELLED || e->domain == VIR_FROM_RPC;
}
