/*
 * test_agent_listener.c - agent/ag_listener.c: the task listener on loopback
 * (libmicrohttpd), driven with libcurl. The handler here is a stub: what the
 * listener itself decides is the path and its kind (task or call), the
 * method, the 64 KiB body cap, and how many calls run at once.
 */
#include "bic_test.h"

#include <curl/curl.h>
#include <pthread.h>
#include <time.h>

#include "ag_listener.h"
#include "ag_log.h"
#include "ag_verify.h"

struct seen {
    pthread_mutex_t lock;
    int calls;
    size_t route, len;
    ag_listener_kind kind;
    char body[128];
    char sig[128];
};

static int stub(void *arg, size_t route, ag_listener_kind kind, const char *body, size_t len,
                const char *sig, char **answer)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    s->route = route;
    s->kind = kind;
    s->len = len;
    snprintf(s->body, sizeof(s->body), "%.*s", (int)(len < 127 ? len : 127), body);
    snprintf(s->sig, sizeof(s->sig), "%s", sig ? sig : "(none)");
    pthread_mutex_unlock(&s->lock);
    *answer = strdup("{\"accepted\":true}");
    return 202;
}

struct answer {
    char body[256];
    size_t len;
    char allow[64];
};

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    struct answer *a = user;
    size_t k = size * n;
    if (a->len + k < sizeof(a->body)) {
        memcpy(a->body + a->len, p, k);
        a->len += k;
        a->body[a->len] = '\0';
    }
    return k;
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    struct answer *a = user;
    size_t k = size * n;
    if (k > 7 && !strncasecmp(p, "Allow: ", 7))
        snprintf(a->allow, sizeof(a->allow), "%.*s", (int)(k - 9), p + 7);
    return k;
}

/* One request; body NULL = GET. chunked sends the body without Content-Length. */
static long request(int port, const char *method, const char *path, const char *body, size_t len,
                    int chunked, struct answer *a)
{
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "X-BIC-Signature: c2lnbmF0dXJl");
    if (chunked) h = curl_slist_append(h, "Transfer-Encoding: chunked");
    memset(a, 0, sizeof(*a));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, chunked ? -1L : (long)len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? status : -(long)rc;
}

struct fixture {
    struct seen seen;
    ag_listener *l;
    int port;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    pthread_mutex_init(&f->seen.lock, NULL);
    char err[256];
    f->l = ag_listener_start("127.0.0.1", 0, stub, &f->seen, err, sizeof(err));
    if (!f->l) {
        print_error("listener: %s\n", err);
        return -1;
    }
    f->port = ag_listener_port(f->l);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ag_listener_stop(f->l);
    pthread_mutex_destroy(&f->seen.lock);
    free(f);
    return 0;
}

static void port_zero_binds_a_free_port(void **state)
{
    struct fixture *f = *state;
    assert_true(f->port > 0 && f->port < 65536);
    char err[256];
    struct seen other = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ag_listener *l2 = ag_listener_start("127.0.0.1", 0, stub, &other, err, sizeof(err));
    assert_non_null(l2);
    assert_int_not_equal(ag_listener_port(l2), f->port);
    ag_listener_stop(l2);
}

static void port_in_use_is_an_error_that_names_it(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    ag_listener *l2 = ag_listener_start("127.0.0.1", f->port, stub, NULL, err, sizeof(err));
    assert_null(l2);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", f->port);
    assert_true(test_contains(err, want));
}

static void post_reaches_the_handler_with_body_and_signature(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    const char *body = "{\"task_id\":1}";
    assert_int_equal(request(f->port, "POST", "/v1/tasks", body, strlen(body), 0, &a), 202);
    assert_string_equal(a.body, "{\"accepted\":true}");
    assert_int_equal(f->seen.calls, 1);
    assert_int_equal(f->seen.len, strlen(body));
    assert_string_equal(f->seen.body, body);
    assert_string_equal(f->seen.sig, "c2lnbmF0dXJl");
}

static void other_paths_are_404_and_other_methods_405(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    assert_int_equal(request(f->port, "POST", "/v1/task", "{}", 2, 0, &a), 404);
    assert_string_equal(a.body, "{\"error\":\"not_found\"}");
    assert_int_equal(request(f->port, "POST", "/v1/tasks/1", "{}", 2, 0, &a), 404);
    assert_int_equal(request(f->port, "GET", "/v1/tasks", NULL, 0, 0, &a), 405);
    assert_string_equal(a.allow, "POST");
    assert_int_equal(request(f->port, "PUT", "/v1/tasks", "{}", 2, 0, &a), 405);
    assert_int_equal(f->seen.calls, 0);
}

static void body_over_64_kib_is_413_with_or_without_length(void **state)
{
    struct fixture *f = *state;
    size_t n = AG_TASK_BODY_MAX + 1;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    struct answer a;
    assert_int_equal(request(f->port, "POST", "/v1/tasks", big, n, 0, &a), 413);
    assert_string_equal(a.body, "{\"error\":\"body_too_large\"}");
    assert_int_equal(request(f->port, "POST", "/v1/tasks", big, n, 1, &a), 413);
    assert_int_equal(f->seen.calls, 0);
    /* exactly the limit is fine */
    big[n - 1] = '\0';
    assert_int_equal(request(f->port, "POST", "/v1/tasks", big, n - 1, 0, &a), 202);
    assert_int_equal(f->seen.len, AG_TASK_BODY_MAX);
    free(big);
}

static void empty_body_reaches_the_handler(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    assert_int_equal(request(f->port, "POST", "/v1/tasks", "", 0, 0, &a), 202);
    assert_int_equal(f->seen.calls, 1);
    assert_int_equal(f->seen.len, 0);
}

static void call_path_reaches_the_handler_as_a_call(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    assert_int_equal(request(f->port, "POST", "/v1/call", "{}", 2, 0, &a), 202);
    assert_int_equal(f->seen.kind, AG_LISTENER_CALL);
    assert_int_equal(request(f->port, "POST", "/v1/tasks", "{}", 2, 0, &a), 202);
    assert_int_equal(f->seen.kind, AG_LISTENER_TASK);
    assert_int_equal(f->seen.calls, 2);
    /* the listener's own refusals of a call have the call's shape */
    assert_int_equal(request(f->port, "GET", "/v1/call", NULL, 0, 0, &a), 405);
    assert_string_equal(a.body, "{\"ok\":false,\"error\":\"method_not_allowed\"}");
    assert_string_equal(a.allow, "POST");
    size_t n = AG_TASK_BODY_MAX + 1;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    assert_int_equal(request(f->port, "POST", "/v1/call", big, n, 1, &a), 413);
    assert_string_equal(a.body, "{\"ok\":false,\"error\":\"body_too_large\"}");
    free(big);
    assert_int_equal(request(f->port, "POST", "/v1/call/x", "{}", 2, 0, &a), 404);
    assert_int_equal(f->seen.calls, 2);
}

/* A handler whose calls wait until the gate opens; tasks pass at once. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int inside, open, calls, tasks;
};

static int gated(void *arg, size_t route, ag_listener_kind kind, const char *body, size_t len,
                 const char *sig, char **answer)
{
    (void)route;
    (void)body;
    (void)len;
    (void)sig;
    struct gate *g = arg;
    pthread_mutex_lock(&g->lock);
    if (kind == AG_LISTENER_CALL) {
        g->calls++;
        g->inside++;
        pthread_cond_broadcast(&g->cond);
        while (!g->open)
            pthread_cond_wait(&g->cond, &g->lock);
        g->inside--;
    } else {
        g->tasks++;
    }
    pthread_mutex_unlock(&g->lock);
    *answer = strdup(kind == AG_LISTENER_CALL ? "{\"ok\":true,\"result\":{}}" : "{}");
    return kind == AG_LISTENER_CALL ? 200 : 202;
}

struct caller {
    int port;
    long status;
    pthread_t t;
};

static void *call_once(void *arg)
{
    struct caller *c = arg;
    struct answer a;
    c->status = request(c->port, "POST", "/v1/call", "{}", 2, 0, &a);
    return NULL;
}

static void calls_wait_in_parallel_and_tasks_pass_meanwhile(void **state)
{
    (void)state;
    struct gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    char err[256];
    ag_listener *l = ag_listener_start("127.0.0.1", 0, gated, &g, err, sizeof(err));
    assert_non_null(l);
    int port = ag_listener_port(l);
    struct caller c[AG_LISTENER_CALLS_MAX];
    for (int i = 0; i < AG_LISTENER_CALLS_MAX; i++) {
        c[i].port = port;
        assert_int_equal(pthread_create(&c[i].t, NULL, call_once, &c[i]), 0);
    }
    /* every call is inside the handler at the same time */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&g.lock);
    while (g.inside < AG_LISTENER_CALLS_MAX)
        if (pthread_cond_timedwait(&g.cond, &g.lock, &until)) break;
    int inside = g.inside;
    pthread_mutex_unlock(&g.lock);
    assert_int_equal(inside, AG_LISTENER_CALLS_MAX);
    /* one call more is refused; a task still gets through */
    struct answer a;
    assert_int_equal(request(port, "POST", "/v1/call", "{}", 2, 0, &a), 503);
    assert_string_equal(a.body, "{\"ok\":false,\"error\":\"busy\"}");
    assert_int_equal(request(port, "POST", "/v1/tasks", "{}", 2, 0, &a), 202);
    pthread_mutex_lock(&g.lock);
    assert_int_equal(g.tasks, 1);
    assert_int_equal(g.calls, AG_LISTENER_CALLS_MAX);
    g.open = 1;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    for (int i = 0; i < AG_LISTENER_CALLS_MAX; i++) {
        pthread_join(c[i].t, NULL);
        assert_int_equal(c[i].status, 200);
    }
    /* the finished calls freed their places */
    for (int i = 0; i < AG_LISTENER_CALLS_MAX + 1; i++)
        assert_int_equal(request(port, "POST", "/v1/call", "{}", 2, 0, &a), 200);
    ag_listener_stop(l);
}

int main(void)
{
    const char *lv = getenv("BIC_AGENT_LOG");
    ag_log_set_level(lv && ag_log_level_parse(lv) >= 0 ? ag_log_level_parse(lv) : AG_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(port_zero_binds_a_free_port),
        T(port_in_use_is_an_error_that_names_it),
        T(post_reaches_the_handler_with_body_and_signature),
        T(other_paths_are_404_and_other_methods_405),
        T(body_over_64_kib_is_413_with_or_without_length),
        T(empty_body_reaches_the_handler),
        T(call_path_reaches_the_handler_as_a_call),
        cmocka_unit_test(calls_wait_in_parallel_and_tasks_pass_meanwhile),
    };
    int rc = cmocka_run_group_tests_name("agent_listener", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
