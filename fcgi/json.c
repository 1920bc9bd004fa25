#include "json.h"

#include <stdio.h>
#include <string.h>

static const char *type_word(bic_ftype t)
{
    switch (t) {
    case F_STR:
        return "a string";
    case F_INT:
        return "an integer";
    case F_BOOL:
        return "a boolean";
    case F_STR_ARRAY:
        return "an array of strings";
    case F_INT_ARRAY:
        return "an array of integers";
    case F_OBJECT:
        return "an object";
    case F_ARRAY:
        return "an array";
    }
    return "?";
}

const char *json_ftype_name(bic_ftype t)
{
    switch (t) {
    case F_STR:
        return "string";
    case F_INT:
        return "integer";
    case F_BOOL:
        return "boolean";
    case F_STR_ARRAY:
        return "string[]";
    case F_INT_ARRAY:
        return "integer[]";
    case F_OBJECT:
        return "object";
    case F_ARRAY:
        return "array";
    }
    return "?";
}

/* C0 controls (but tab), DEL, and C1 controls (U+0080..U+009F, UTF-8 C2 80..C2 9F). */
static bool utf8_has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) return true;
        if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) return true;
    }
    return false;
}

/* A string value is acceptable text: no embedded NUL, no control characters. */
static bool text_ok(const json_t *v)
{
    const char *s = json_string_value(v);
    return strlen(s) == json_string_length(v) && !utf8_has_control(s);
}

static bic_err check_field(const bic_field *f, json_t *v, char *msg, size_t msglen)
{
    if (json_is_null(v) && f->nullable) return BIC_E_OK;
    switch (f->type) {
    case F_STR: {
        if (!json_is_string(v)) break;
        size_t n = json_string_length(v);
        const char *s = json_string_value(v);
        if (!text_ok(v)) {
            snprintf(msg, msglen, "field '%s' must not contain control characters", f->name);
            return BIC_E_VALIDATION;
        }
        if ((long long)n < f->min || (f->max && (long long)n > f->max)) {
            snprintf(msg, msglen, "field '%s' must be %lld to %lld bytes long", f->name, f->min,
                     f->max);
            return BIC_E_VALIDATION;
        }
        if (f->choices) {
            for (const char *const *c = f->choices; *c; c++)
                if (!strcmp(*c, s)) return BIC_E_OK;
            snprintf(msg, msglen, "field '%s' has an unknown value", f->name);
            return BIC_E_VALIDATION;
        }
        return BIC_E_OK;
    }
    case F_INT: {
        if (!json_is_integer(v)) break;
        long long x = json_integer_value(v);
        if (x < f->min || x > f->max) {
            snprintf(msg, msglen, "field '%s' must be between %lld and %lld", f->name, f->min,
                     f->max);
            return BIC_E_VALIDATION;
        }
        return BIC_E_OK;
    }
    case F_BOOL:
        if (!json_is_boolean(v)) break;
        return BIC_E_OK;
    case F_OBJECT:
        if (!json_is_object(v)) break;
        return BIC_E_OK;
    case F_ARRAY:
        if (!json_is_array(v)) break;
        if (f->max && (long long)json_array_size(v) > f->max) {
            snprintf(msg, msglen, "field '%s' may hold at most %lld items", f->name, f->max);
            return BIC_E_VALIDATION;
        }
        return BIC_E_OK;
    case F_STR_ARRAY:
    case F_INT_ARRAY: {
        if (!json_is_array(v)) break;
        size_t n = json_array_size(v);
        if ((long long)n < f->min || (f->max && (long long)n > f->max)) {
            snprintf(msg, msglen, "field '%s' must hold %lld to %lld items", f->name, f->min,
                     f->max);
            return BIC_E_VALIDATION;
        }
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            bool ok = f->type == F_STR_ARRAY ? json_is_string(item) : json_is_integer(item);
            if (!ok) {
                snprintf(msg, msglen, "field '%s' must be %s", f->name, type_word(f->type));
                return BIC_E_VALIDATION;
            }
            if (f->type == F_STR_ARRAY && !text_ok(item)) {
                snprintf(msg, msglen, "field '%s' must not contain control characters", f->name);
                return BIC_E_VALIDATION;
            }
        }
        return BIC_E_OK;
    }
    }
    snprintf(msg, msglen, "field '%s' must be %s", f->name, type_word(f->type));
    return BIC_E_VALIDATION;
}

bic_err json_body_parse(const char *body, size_t len, const bic_field *fields, json_t **out,
                        char *msg, size_t msglen)
{
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(msg, msglen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return BIC_E_BAD_JSON;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(msg, msglen, "the body must be a JSON object");
        return BIC_E_BAD_JSON;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        const bic_field *f = fields;
        while (f && f->name && strcmp(f->name, key))
            f++;
        if (!f || !f->name) {
            snprintf(msg, msglen, "unknown field '%.64s'", key);
            json_decref(root);
            return BIC_E_VALIDATION;
        }
        bic_err e = check_field(f, v, msg, msglen);
        if (e != BIC_E_OK) {
            json_decref(root);
            return e;
        }
    }
    for (const bic_field *f = fields; f && f->name; f++)
        if (f->required && !json_object_get(root, f->name)) {
            snprintf(msg, msglen, "field '%s' is required", f->name);
            json_decref(root);
            return BIC_E_VALIDATION;
        }
    *out = root;
    return BIC_E_OK;
}

const char *json_get_str(const json_t *o, const char *key, const char *def)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : def;
}

long long json_get_int(const json_t *o, const char *key, long long def)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

bool json_get_bool(const json_t *o, const char *key, bool def)
{
    const json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}
