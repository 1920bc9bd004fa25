#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum key_type { T_STR, T_INT };

static const struct key {
    const char *section, *name;
    enum key_type type;
    size_t offset;
} keys[] = {
#define BIC_X_KEY(sec, nm, type, def) {#sec, #nm, T_##type, offsetof(bic_config, sec##_##nm)},
    BIC_CONFIG_KEYS(BIC_X_KEY)
#undef BIC_X_KEY
};

struct load_ctx {
    bic_config *cfg;
    char *err;
    unsigned errlen;
    int failed;
};

static int set_value(bic_config *cfg, const struct key *k, const char *value, char *err,
                     unsigned errlen)
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
    long v = strtol(value, &end, 0); /* base 0: "0660" is octal, as in socket_mode */
    while (*end && isspace((unsigned char)*end))
        end++;
    if (errno || end == value || *end) {
        snprintf(err, errlen, "[%s] %s: '%s' is not a number", k->section, k->name, value);
        return -1;
    }
    *(long *)field = v;
    return 0;
}

static const struct key *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strcasecmp(keys[i].section, section) && !strcasecmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *ctx = user;
    const struct key *k = find_key(section, name);
    if (!k) {
        snprintf(ctx->err, ctx->errlen, "unknown key [%s] %s", section, name);
        ctx->failed = 1;
        return 0;
    }
    if (set_value(ctx->cfg, k, value, ctx->err, ctx->errlen) < 0) {
        ctx->failed = 1;
        return 0;
    }
    return 1;
}

int config_load(bic_config *cfg, const char *path, char *err, unsigned errlen)
{
    memset(cfg, 0, sizeof(*cfg));
#define BIC_X_DEF_STR(sec, nm, def)   cfg->sec##_##nm = strdup(def);
#define BIC_X_DEF_INT(sec, nm, def)   cfg->sec##_##nm = (def);
#define BIC_X_DEF(sec, nm, type, def) BIC_X_DEF_##type(sec, nm, def)
    BIC_CONFIG_KEYS(BIC_X_DEF)
#undef BIC_X_DEF
#undef BIC_X_DEF_INT
#undef BIC_X_DEF_STR
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
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

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char var[96];
        snprintf(var, sizeof(var), "BIC_%s_%s", keys[i].section, keys[i].name);
        for (char *p = var; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        const char *v = getenv(var);
        if (v && set_value(cfg, &keys[i], v, err, errlen) < 0) return -1;
    }
    return 0;
}

void config_free(bic_config *cfg)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (keys[i].type == T_STR) {
            char **f = (char **)((char *)cfg + keys[i].offset);
            free(*f);
            *f = NULL;
        }
}
