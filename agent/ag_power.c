#include "ag_power.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/virterror.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ag_provision.h"
#include "ag_util.h"

extern char **environ;

int ag_power_simulated(const ag_config *cfg)
{
    return !strncmp(cfg->libvirt_uri, "test:", 5);
}

static void off_path(const ag_config *cfg, char *buf, size_t len)
{
    snprintf(buf, len, "%s/" AG_POWER_OFF_FILE, cfg->state_dir);
}

int ag_power_is_off(const ag_config *cfg)
{
    if (!ag_power_simulated(cfg)) return 0;
    char path[PATH_MAX];
    off_path(cfg, path, sizeof(path));
    return access(path, F_OK) == 0;
}

static int check_params(const json_t *params, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)params, k, v)
    {
        if (strcmp(k, "reason") || !json_is_string(v)) {
            snprintf(err, errlen, "unknown parameter '%.40s'", k);
            return -1;
        }
    }
    return 0;
}

int ag_power_task(const ag_exec_env *env, const char *type, const json_t *params, json_t **result,
                  char *err, size_t errlen)
{
    if (strcmp(type, "host.power_off")) return AG_PROV_NOT_MINE;
    if (check_params(params, err, errlen) < 0) return -1;
    if (!env->conn) {
        snprintf(err, errlen, "hypervisor connection is down: cannot tell whether desktops run");
        return -1;
    }
    int active = virConnectNumOfDomains(env->conn);
    if (active < 0) {
        const char *m = virGetLastErrorMessage();
        snprintf(err, errlen, "virConnectNumOfDomains: %s", m ? m : "unknown libvirt error");
        return -1;
    }
    if (active > 0) {
        snprintf(err, errlen, "%d domains are running: not powering off", active);
        return -1;
    }
    int sim = ag_power_simulated(env->cfg);
    if (sim) {
        char path[PATH_MAX];
        off_path(env->cfg, path, sizeof(path));
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            return -1;
        }
        close(fd);
    } else {
        char *argv[] = {AG_POWER_SHUTDOWN, "-P", "+1", NULL};
        pid_t pid;
        int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
        if (rc) {
            snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
            return -1;
        }
        int st;
        if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
            snprintf(err, errlen, "%s -P +1 failed", argv[0]);
            return -1;
        }
    }
    *result = json_pack("{s:b, s:i, s:i}", "simulated", sim, "domains_running", 0, "in_s",
                        sim ? 0 : 60);
    if (!*result) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
