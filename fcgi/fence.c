/*
 * fence.c - Redfish (libcurl) and IPMI (ipmitool, posix_spawnp) power-off for failure
 * recovery. Declared in fence.h.
 */
#include "fence.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define FENCE_BODY_MAX 65536

/* ---- Redfish ---- */

struct buf {
    char data[FENCE_BODY_MAX + 1];
    size_t len;
    bool too_big;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
    struct buf *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > FENCE_BODY_MAX) {
        b->too_big = true;
        return 0;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* One request; the HTTP status in *status, the body in b. 0, or -1 with why. */
static int http_call(const fence_target *t, const char *path, const char *post, long *status,
                     struct buf *b, char *why, size_t len)
{
    char url[1024];
    size_t alen = strlen(t->address);
    while (alen > 0 && t->address[alen - 1] == '/')
        alen--;
    if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)alen, t->address, path) >= sizeof(url)) {
        snprintf(why, len, "the BMC address is too long");
        return -1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    char err[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
    if (post) hdr = curl_slist_append(hdr, "Content-Type: application/json");
    b->len = 0;
    b->data[0] = '\0';
    b->too_big = false;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, t->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, t->timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    if (t->user && *t->user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, t->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, t->password ? t->password : "");
    }
    if (t->ca_pem && *t->ca_pem) {
        struct curl_blob blob = {(void *)t->ca_pem, strlen(t->ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (post) curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        snprintf(why, len, "Redfish %s %s: %s", post ? "POST" : "GET", path,
                 b->too_big ? "the answer is too large"
                 : err[0]   ? err
                            : curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

/* The first system's path ("/redfish/v1/Systems/<id>") into out. 0, or -1 with why. */
static int redfish_system(const fence_target *t, char *out, size_t outlen, char *why, size_t len)
{
    struct buf *b = malloc(sizeof(*b));
    if (!b) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    long status = 0;
    int rc = -1;
    if (http_call(t, "/redfish/v1/Systems", NULL, &status, b, why, len) < 0) goto out;
    if (status == 401 || status == 403) {
        snprintf(why, len, "Redfish refused the BMC user name or password (HTTP %ld)", status);
        goto out;
    }
    if (status != 200) {
        snprintf(why, len, "Redfish GET /redfish/v1/Systems answered HTTP %ld", status);
        goto out;
    }
    json_t *j = json_loadb(b->data, b->len, 0, NULL);
    json_t *m = json_array_get(json_object_get(j, "Members"), 0);
    const char *id = json_string_value(json_object_get(m, "@odata.id"));
    if (!id || strncmp(id, "/redfish/v1/Systems/", 20) || strlen(id) <= 20 ||
        strlen(id) >= outlen || strpbrk(id, "?#\"\\ ") || strstr(id, "..")) {
        snprintf(why, len, "Redfish lists no usable computer system under /redfish/v1/Systems");
    } else {
        snprintf(out, outlen, "%s", id);
        rc = 0;
    }
    json_decref(j);
out:
    free(b);
    return rc;
}

static fence_result redfish_state(const fence_target *t, const char *sys, char *why, size_t len)
{
    struct buf *b = malloc(sizeof(*b));
    if (!b) {
        snprintf(why, len, "out of memory");
        return FENCE_FAILED;
    }
    long status = 0;
    fence_result r = FENCE_FAILED;
    if (http_call(t, sys, NULL, &status, b, why, len) == 0) {
        if (status != 200) {
            snprintf(why, len, "Redfish GET %s answered HTTP %ld", sys, status);
        } else {
            json_t *j = json_loadb(b->data, b->len, 0, NULL);
            const char *ps = json_string_value(json_object_get(j, "PowerState"));
            if (!ps)
                snprintf(why, len, "Redfish gives no PowerState for %s", sys);
            else if (!strcmp(ps, "Off"))
                r = FENCE_OFF;
            else {
                r = FENCE_PENDING;
                snprintf(why, len, "Redfish PowerState is %.32s", ps);
            }
            json_decref(j);
        }
    }
    free(b);
    return r;
}

static fence_result redfish_off(const fence_target *t, char *why, size_t len)
{
    char sys[256], path[300];
    if (redfish_system(t, sys, sizeof(sys), why, len) < 0) return FENCE_FAILED;
    fence_result now = redfish_state(t, sys, why, len);
    if (now != FENCE_PENDING) return now; /* already off, or failed */
    struct buf *b = malloc(sizeof(*b));
    if (!b) {
        snprintf(why, len, "out of memory");
        return FENCE_FAILED;
    }
    snprintf(path, sizeof(path), "%s/Actions/ComputerSystem.Reset", sys);
    long status = 0;
    fence_result r = FENCE_FAILED;
    if (http_call(t, path, "{\"ResetType\": \"ForceOff\"}", &status, b, why, len) == 0) {
        if (status >= 200 && status < 300) {
            r = FENCE_PENDING;
            snprintf(why, len, "Redfish accepted ForceOff (HTTP %ld)", status);
        } else {
            snprintf(why, len, "Redfish refused ForceOff on %s: HTTP %ld", sys, status);
        }
    }
    free(b);
    if (r == FENCE_PENDING && redfish_state(t, sys, why, len) == FENCE_OFF) r = FENCE_OFF;
    return r;
}

static int redfish_on(const fence_target *t, char *why, size_t len)
{
    char sys[256], path[300];
    if (redfish_system(t, sys, sizeof(sys), why, len) < 0) return -1;
    fence_result now = redfish_state(t, sys, why, len);
    if (now == FENCE_FAILED) return -1;
    if (now == FENCE_PENDING) { /* PowerState On */
        snprintf(why, len, "Redfish PowerState is already On");
        return 0;
    }
    struct buf *b = malloc(sizeof(*b));
    if (!b) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/Actions/ComputerSystem.Reset", sys);
    long status = 0;
    int rc = -1;
    if (http_call(t, path, "{\"ResetType\": \"On\"}", &status, b, why, len) == 0) {
        if (status >= 200 && status < 300) {
            rc = 0;
            snprintf(why, len, "Redfish accepted On (HTTP %ld)", status);
        } else {
            snprintf(why, len, "Redfish refused On on %s: HTTP %ld", sys, status);
        }
    }
    free(b);
    return rc;
}

static fence_result redfish_check(const fence_target *t, char *why, size_t len)
{
    char sys[256];
    if (redfish_system(t, sys, sizeof(sys), why, len) < 0) return FENCE_FAILED;
    return redfish_state(t, sys, why, len);
}

/* ---- IPMI ---- */

const char *fence_ipmitool(void)
{
    const char *p = getenv("BIC_IPMITOOL");
    return p && *p ? p : "ipmitool";
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Runs ipmitool with the command words cmd (NULL-terminated) against t; its output (at most
 * outlen - 1 bytes) in out. 0 when it exited 0, or -1 with why.
 */
static int ipmitool(const fence_target *t, const char *const *cmd, char *out, size_t outlen,
                    char *why, size_t len)
{
    char host[256], port[8] = "623";
    snprintf(host, sizeof(host), "%s", t->address);
    char *colon = strrchr(host, ':');
    if (colon && !strchr(host, ']') && strchr(host, ':') == colon) {
        *colon = '\0';
        snprintf(port, sizeof(port), "%.5s", colon + 1);
    }
    const char *argv[24];
    size_t n = 0;
    argv[n++] = fence_ipmitool();
    argv[n++] = "-I";
    argv[n++] = "lanplus";
    argv[n++] = "-H";
    argv[n++] = host;
    argv[n++] = "-p";
    argv[n++] = port;
    argv[n++] = "-U";
    argv[n++] = t->user ? t->user : "";
    argv[n++] = "-E"; /* the password from IPMI_PASSWORD */
    argv[n++] = "-N";
    argv[n++] = "2";
    argv[n++] = "-R";
    argv[n++] = "1";
    for (size_t i = 0; cmd[i] && n < 23; i++)
        argv[n++] = cmd[i];
    argv[n] = NULL;

    /* the environment: PATH and the password only */
    const char *path = getenv("PATH");
    char *envp[3];
    size_t pwlen = strlen(t->password ? t->password : "");
    char *pathv = malloc(strlen(path ? path : "/usr/bin:/bin") + 6);
    char *pwv = malloc(pwlen + 15);
    if (!pathv || !pwv) {
        free(pathv);
        free(pwv);
        snprintf(why, len, "out of memory");
        return -1;
    }
    sprintf(pathv, "PATH=%s", path ? path : "/usr/bin:/bin");
    sprintf(pwv, "IPMI_PASSWORD=%s", t->password ? t->password : "");
    envp[0] = pathv;
    envp[1] = pwv;
    envp[2] = NULL;

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(why, len, "pipe: %s", strerror(errno));
        free(pathv);
        explicit_bzero(pwv, pwlen + 15);
        free(pwv);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    free(pathv);
    explicit_bzero(pwv, pwlen + 15);
    free(pwv);
    if (rc != 0) {
        close(fds[0]);
        snprintf(why, len, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    size_t got = 0;
    long long deadline = now_ms() + t->timeout_ms;
    bool timed_out = false;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int pr = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        char tmp[512];
        ssize_t r = read(fds[0], tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* EOF: the program is done writing */
        size_t keep = (size_t)r;
        if (got + keep > outlen - 1) keep = outlen - 1 - got;
        memcpy(out + got, tmp, keep);
        got += keep;
    }
    out[got] = '\0';
    close(fds[0]);
    int status = 0;
    if (timed_out) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        snprintf(why, len, "ipmitool gave no answer within %ld ms", t->timeout_ms);
        return -1;
    }
    /* the output is closed: give the program until the deadline to exit */
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            snprintf(why, len, "ipmitool did not exit within %ld ms", t->timeout_ms);
            return -1;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *nl = strchr(out, '\n');
        if (nl) *nl = '\0';
        snprintf(why, len, "ipmitool %s failed (%s %d): %.200s", cmd[0],
                 WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out);
        return -1;
    }
    return 0;
}

static fence_result ipmi_check(const fence_target *t, char *why, size_t len)
{
    static const char *const cmd[] = {"chassis", "power", "status", NULL};
    char out[512];
    if (ipmitool(t, cmd, out, sizeof(out), why, len) < 0) return FENCE_FAILED;
    if (strstr(out, "Chassis Power is off")) return FENCE_OFF;
    if (strstr(out, "Chassis Power is on")) {
        snprintf(why, len, "IPMI: Chassis Power is on");
        return FENCE_PENDING;
    }
    char *nl = strchr(out, '\n');
    if (nl) *nl = '\0';
    snprintf(why, len, "IPMI power status not understood: %.200s", out);
    return FENCE_FAILED;
}

static fence_result ipmi_off(const fence_target *t, char *why, size_t len)
{
    static const char *const cmd[] = {"chassis", "power", "off", NULL};
    char out[512];
    if (ipmitool(t, cmd, out, sizeof(out), why, len) < 0) return FENCE_FAILED;
    fence_result r = ipmi_check(t, why, len);
    if (r == FENCE_PENDING) snprintf(why, len, "IPMI accepted power off");
    return r;
}

static int ipmi_on(const fence_target *t, char *why, size_t len)
{
    static const char *const cmd[] = {"chassis", "power", "on", NULL};
    char out[512];
    if (ipmitool(t, cmd, out, sizeof(out), why, len) < 0) return -1;
    snprintf(why, len, "IPMI accepted power on");
    return 0;
}

/* ---- the interface ---- */

int fence_power_on(const fence_target *t, char *why, size_t len)
{
    why[0] = '\0';
    return t->type == FENCE_REDFISH ? redfish_on(t, why, len) : ipmi_on(t, why, len);
}

fence_result fence_power_off(const fence_target *t, char *why, size_t len)
{
    why[0] = '\0';
    return t->type == FENCE_REDFISH ? redfish_off(t, why, len) : ipmi_off(t, why, len);
}

fence_result fence_power_state(const fence_target *t, char *why, size_t len)
{
    why[0] = '\0';
    return t->type == FENCE_REDFISH ? redfish_check(t, why, len) : ipmi_check(t, why, len);
}

bool fence_address_valid(fence_type type, const char *addr, char *why, size_t len)
{
    if (!addr || !*addr) {
        snprintf(why, len, "address is required");
        return false;
    }
    for (const char *p = addr; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '\\' || *p == '\'' || *p == 0x7f) {
            snprintf(why, len, "address must not contain spaces, quotes or control characters");
            return false;
        }
    if (type == FENCE_REDFISH) {
        const char *host = !strncmp(addr, "https://", 8)  ? addr + 8
                           : !strncmp(addr, "http://", 7) ? addr + 7
                                                          : NULL;
        if (!host || !*host || *host == '/') {
            snprintf(why, len, "a Redfish address is http(s)://host[:port]");
            return false;
        }
        if (strpbrk(host, "?#@")) {
            snprintf(why, len, "a Redfish address has no query, fragment or user part");
            return false;
        }
        const char *slash = strchr(host, '/');
        if (slash && slash[1]) {
            snprintf(why, len, "a Redfish address has no path (/redfish/v1 is added)");
            return false;
        }
        return true;
    }
    if (*addr == '-' || strpbrk(addr, "/?#@[]")) {
        snprintf(why, len, "an IPMI address is host or host:port");
        return false;
    }
    return true;
}
