#include "ag_config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ag_sriov.h"
#include "ag_util.h"

enum key_type { T_STR, T_INT };

static const struct key {
    const char *name;
    enum key_type type;
    size_t offset;
} keys[] = {
#define AG_X_KEY(nm, type, def) {#nm, T_##type, offsetof(ag_config, nm)},
    AG_CONFIG_KEYS(AG_X_KEY)
#undef AG_X_KEY
};

struct load_ctx {
    ag_config *cfg;
    char *err;
    size_t errlen;
    int failed;
};

static int set_value(ag_config *cfg, const struct key *k, const char *value, const char *from,
                     char *err, size_t errlen)
{
    char *field = (char *)cfg + k->offset;
    if (k->type == T_STR) {
        char *copy = strdup(value);
        if (!copy) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (errno || end == value || *end) {
        snprintf(err, errlen, "%s: %s: '%s' is not a number", from, k->name, value);
        return -1;
    }
    *(long *)field = v;
    return 0;
}

static const struct key *find_key(const char *name)
{
    for (size_t i = 0; i < AG_NELEM(keys); i++)
        if (!strcasecmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *ctx = user;
    const struct key *k = strcasecmp(section, "agent") ? NULL : find_key(name);
    if (!k) {
        snprintf(ctx->err, ctx->errlen, "unknown key [%s] %s", section, name);
        ctx->failed = 1;
        return 0;
    }
    if (set_value(ctx->cfg, k, value, "[agent]", ctx->err, ctx->errlen) < 0) {
        ctx->failed = 1;
        return 0;
    }
    return 1;
}

int ag_config_load(ag_config *cfg, const char *path, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
#define AG_X_DEF_STR(nm, def)   cfg->nm = strdup(def);
#define AG_X_DEF_INT(nm, def)   cfg->nm = (def);
#define AG_X_DEF(nm, type, def) AG_X_DEF_##type(nm, def)
    AG_CONFIG_KEYS(AG_X_DEF)
#undef AG_X_DEF
#undef AG_X_DEF_INT
#undef AG_X_DEF_STR
    for (size_t i = 0; i < AG_NELEM(keys); i++)
        if (keys[i].type == T_STR && !*(char **)((char *)cfg + keys[i].offset)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }

    if (path) {
        struct load_ctx ctx = {cfg, err, errlen, 0};
        int rc = ini_parse(path, on_ini, &ctx);
        if (rc == -1) {
            snprintf(err, errlen, "cannot open config file %s", path);
            return -1;
        }
        if (ctx.failed) return -1;
        if (rc != 0) {
            snprintf(err, errlen, "%s:%d: syntax error", path, rc);
            return -1;
        }
    }

    for (size_t i = 0; i < AG_NELEM(keys); i++) {
        char var[96];
        snprintf(var, sizeof(var), "BIC_AGENT_%s", keys[i].name);
        for (char *p = var; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        const char *v = getenv(var);
        if (v && set_value(cfg, &keys[i], v, var, err, errlen) < 0) return -1;
    }
    return 0;
}

void ag_config_free(ag_config *cfg)
{
    for (size_t i = 0; i < AG_NELEM(keys); i++)
        if (keys[i].type == T_STR) {
            char **f = (char **)((char *)cfg + keys[i].offset);
            free(*f);
            *f = NULL;
        }
}

int ag_config_copy(ag_config *dst, const ag_config *src)
{
    *dst = *src;
    for (size_t i = 0; i < AG_NELEM(keys); i++)
        if (keys[i].type == T_STR) *(char **)((char *)dst + keys[i].offset) = NULL;
    for (size_t i = 0; i < AG_NELEM(keys); i++) {
        if (keys[i].type != T_STR) continue;
        const char *v = *(char *const *)((const char *)src + keys[i].offset);
        char **f = (char **)((char *)dst + keys[i].offset);
        if (v && !(*f = strdup(v))) return -1;
    }
    return 0;
}

int ag_config_set(ag_config *cfg, const char *name, const char *value)
{
    const struct key *k = find_key(name);
    if (!k || k->type != T_STR) return -1;
    char *copy = strdup(value);
    if (!copy) return -1;
    char **f = (char **)((char *)cfg + k->offset);
    free(*f);
    *f = copy;
    return 0;
}

void ag_config_listen_url(const ag_config *cfg, int bound_port, char *buf, size_t len)
{
    if (*cfg->advertise_url) {
        snprintf(buf, len, "%s", cfg->advertise_url);
        return;
    }
    const char *host = cfg->listen_host;
    /* a wildcard address is no address CCC can call: use the host name */
    if (!*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")) host = cfg->hostname;
    int v6 = strchr(host, ':') != NULL;
    snprintf(buf, len, "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", bound_port);
}

int ag_listen_parse(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *colon;
    size_t hlen;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':') return -1;
        hlen = (size_t)(close - listen - 1);
        if (hlen >= hostlen) return -1;
        memcpy(host, listen + 1, hlen);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon) return -1;
        hlen = (size_t)(colon - listen);
        if (hlen >= hostlen || memchr(listen, ':', hlen)) return -1; /* bare v6 needs [] */
        memcpy(host, listen, hlen);
    }
    host[hlen] = '\0';
    const char *p = colon + 1;
    if (!*p) return -1;
    long v = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p)) return -1;
        v = v * 10 + (*p - '0');
        if (v > 65535) return -1;
    }
    *port = (int)v;
    return 0;
}

/* A machine id or host name: min..max printable characters without spaces or quotes. */
static int plain_word(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max) return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 127 || *s == '"' || *s == '\\') return 0;
    return 1;
}

static int set_str(char **field, const char *value, char *err, size_t errlen)
{
    char *copy = strdup(value);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(*field);
    *field = copy;
    return 0;
}

static int url_ok(const char *url)
{
    return (!strncmp(url, "https://", 8) && url[8]) || (!strncmp(url, "http://", 7) && url[7]);
}

/* bridge, sriov_numvfs and sriov_netlink (docs/agent-protocol.md, "SR-IOV"). */
static int sriov_ok(const ag_config *cfg, char *err, size_t errlen)
{
    if (*cfg->bridge && (!ag_sriov_ifname_ok(cfg->bridge) || strpbrk(cfg->bridge, "'\"\\"))) {
        snprintf(err, errlen, "bridge must be \"\" or an interface name (1..15 characters)");
        return -1;
    }
    ag_sriov_want want[AG_SRIOV_WANT_MAX];
    if (ag_sriov_numvfs_parse(cfg->sriov_numvfs, want, AG_NELEM(want), err, errlen) < 0) return -1;
    if (strcmp(cfg->sriov_netlink, "auto") && strcmp(cfg->sriov_netlink, "on") &&
        strcmp(cfg->sriov_netlink, "off")) {
        snprintf(err, errlen, "sriov_netlink must be auto, on or off");
        return -1;
    }
    return 0;
}

int ag_config_sriov_netlink(const ag_config *cfg)
{
    if (!strcmp(cfg->sriov_netlink, "on")) return 1;
    return !strcmp(cfg->sriov_netlink, "auto") && !*cfg->root_prefix;
}

/* The keys of docs/agent-protocol.md, "Provisioning tasks". */
static int provisioning_ok(const ag_config *cfg, char *err, size_t errlen)
{
    static const char *const types[] = {"auto", "kvm", "qemu", "test"};
    if (!plain_word(cfg->storage_pool, 1, 64) || strchr(cfg->storage_pool, '/')) {
        snprintf(err, errlen,
                 "storage_pool must be 1..64 printable characters without spaces or /");
        return -1;
    }
    if (cfg->image_dir[0] != '/' || !plain_word(cfg->image_dir, 2, 255)) {
        snprintf(err, errlen, "image_dir must be an absolute path without spaces");
        return -1;
    }
    size_t i = 0;
    while (i < AG_NELEM(types) && strcmp(cfg->domain_type, types[i]))
        i++;
    if (i == AG_NELEM(types)) {
        snprintf(err, errlen, "domain_type must be auto, kvm, qemu or test");
        return -1;
    }
    if (!plain_word(cfg->vnc_listen, 1, 255)) {
        snprintf(err, errlen, "vnc_listen must be an address");
        return -1;
    }
    if (*cfg->network && (!plain_word(cfg->network, 1, 64) || strchr(cfg->network, '/'))) {
        snprintf(err, errlen, "network must be \"\" or a libvirt network name");
        return -1;
    }
    return sriov_ok(cfg, err, errlen);
}

int ag_config_resolve(ag_config *cfg, char *err, size_t errlen)
{
    if (!url_ok(cfg->ccc_url)) {
        snprintf(err, errlen, "ccc_url must be an https:// (or http://) URL");
        return -1;
    }
    size_t n = strlen(cfg->ccc_url);
    while (n > 0 && cfg->ccc_url[n - 1] == '/')
        cfg->ccc_url[--n] = '\0';
    if (!*cfg->state_dir) {
        snprintf(err, errlen, "state_dir must be set");
        return -1;
    }
    if (ag_listen_parse(cfg->listen, cfg->listen_host, sizeof(cfg->listen_host),
                        &cfg->listen_port) < 0) {
        snprintf(err, errlen, "listen '%s' is not host:port", cfg->listen);
        return -1;
    }
    if (*cfg->advertise_url && (!url_ok(cfg->advertise_url) || strlen(cfg->advertise_url) > 255)) {
        snprintf(err, errlen,
                 "advertise_url must be an http:// or https:// URL (255 bytes at most)");
        return -1;
    }
    if (!*cfg->libvirt_uri) {
        snprintf(err, errlen, "libvirt_uri must be set");
        return -1;
    }
    if (cfg->heartbeat_interval < 0 || cfg->heartbeat_interval > 3600) {
        snprintf(err, errlen, "heartbeat_interval must be 0 (CCC decides) or 1..3600");
        return -1;
    }
    if (!*cfg->machine_id) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/etc/machine-id", cfg->root_prefix);
        char *id = ag_file_read(path, 4096, NULL);
        if (!id) {
            snprintf(err, errlen, "cannot read %s: %s (set machine_id)", path, strerror(errno));
            return -1;
        }
        id[strcspn(id, "\r\n")] = '\0';
        int rc = set_str(&cfg->machine_id, id, err, errlen);
        free(id);
        if (rc < 0) return -1;
    }
    if (!plain_word(cfg->machine_id, 8, 64)) {
        snprintf(err, errlen, "machine_id must be 8..64 printable characters without spaces");
        return -1;
    }
    if (!*cfg->hostname) {
        char host[HOST_NAME_MAX + 1] = "";
        if (gethostname(host, sizeof(host)) < 0) {
            snprintf(err, errlen, "gethostname: %s (set hostname)", strerror(errno));
            return -1;
        }
        host[HOST_NAME_MAX] = '\0';
        if (set_str(&cfg->hostname, host, err, errlen) < 0) return -1;
    }
    if (!plain_word(cfg->hostname, 1, 253)) {
        snprintf(err, errlen, "hostname must be 1..253 printable characters without spaces");
        return -1;
    }
    return provisioning_ok(cfg, err, errlen);
}
