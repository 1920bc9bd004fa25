/*
 * json.h - strict JSON request bodies.
 *
 * A route declares the fields its body may hold (bic_field, terminated by a
 * field with name NULL). json_body_parse() rejects invalid JSON, duplicate keys,
 * non-object bodies, unknown keys, missing required keys, wrong types and values
 * out of range, before any handler logic runs.
 */
#ifndef BIC_JSON_H
#define BIC_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "errors.h"

/* F_OBJECT and F_ARRAY accept any object / array (items checked by the handler). */
typedef enum { F_STR, F_INT, F_BOOL, F_STR_ARRAY, F_INT_ARRAY, F_OBJECT, F_ARRAY } bic_ftype;

typedef struct {
    const char *name;
    bic_ftype type;
    bool required;
    long long min, max;         /* F_STR: byte length; F_INT: value; arrays: item count */
    const char *const *choices; /* F_STR: allowed values, NULL-terminated, or NULL */
    bool nullable;              /* JSON null accepted (means "clear") */
} bic_field;

/*
 * Parses len bytes of body against fields. On success stores the object (owned
 * by the caller) in *out and returns BIC_E_OK. On failure returns BIC_E_BAD_JSON
 * or BIC_E_VALIDATION and writes a client-safe explanation to msg.
 */
bic_err json_body_parse(const char *body, size_t len, const bic_field *fields, json_t **out,
                        char *msg, size_t msglen);

/* Name of a field type as the API documents it ("string", "integer", ...). */
const char *json_ftype_name(bic_ftype t);

/* Typed getters on a validated object: defaults when the key is absent or null. */
const char *json_get_str(const json_t *o, const char *key, const char *def);
long long json_get_int(const json_t *o, const char *key, long long def);
bool json_get_bool(const json_t *o, const char *key, bool def);

#endif
