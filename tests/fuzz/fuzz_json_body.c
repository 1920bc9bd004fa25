/*
 * fuzz_json_body - JSON request bodies of every route family: json_body_parse() against
 * the field table of a route taken from the real route table (bic_routes), then the
 * typed getters the handlers use.
 *
 * Input: the first line names the route as "METHOD PATH" exactly as `bicd routes` prints
 * it (e.g. "POST /api/v1/pools"); a line that names none picks the route by the first
 * byte among the routes with a field table. The rest is the body.
 *
 * Besides ASan/UBSan errors it aborts when an accepted body breaks its own table:
 * a key the table does not declare, a required key missing, a value of another type,
 * a string or integer out of range or not among the choices, a string with a NUL or a
 * control character, or an array longer than allowed.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "routes.h"

static const bic_route *with_fields[512];
static size_t nwith;

static void init(void)
{
    if (nwith) return;
    for (size_t i = 0; i < bic_nroutes && nwith < 512; i++)
        if (bic_routes[i].fields && bic_routes[i].fields->name) with_fields[nwith++] = &bic_routes[i];
    if (!nwith) abort();
}

static const bic_route *pick(const char *line)
{
    char name[512];
    for (size_t i = 0; i < nwith; i++) {
        snprintf(name, sizeof(name), "%s %s", method_name(with_fields[i]->method),
                 with_fields[i]->path);
        if (!strcmp(name, line)) return with_fields[i];
    }
    return with_fields[(unsigned char)line[0] % nwith];
}

static int control_free(const char *s, size_t n)
{
    if (strlen(s) != n) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) return 0;
        if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) return 0;
    }
    return 1;
}

/* Aborts unless v obeys f (the table's promise to the handler). */
static void obeys(const bic_field *f, json_t *v)
{
    if (json_is_null(v)) {
        if (!f->nullable) abort();
        return;
    }
    switch (f->type) {
    case F_STR: {
        if (!json_is_string(v)) abort();
        size_t n = json_string_length(v);
        if (!control_free(json_string_value(v), n)) abort();
        if ((long long)n < f->min || (f->max && (long long)n > f->max)) abort();
        if (f->choices) {
            const char *const *c = f->choices;
            while (*c && strcmp(*c, json_string_value(v)))
                c++;
            if (!*c) abort();
        }
        (void)json_get_str(v, "x", NULL);
        break;
    }
    case F_INT:
        if (!json_is_integer(v)) abort();
        if (json_integer_value(v) < f->min || json_integer_value(v) > f->max) abort();
        break;
    case F_BOOL:
        if (!json_is_boolean(v)) abort();
        break;
    case F_OBJECT:
        if (!json_is_object(v)) abort();
        break;
    case F_ARRAY:
        if (!json_is_array(v) || (f->max && (long long)json_array_size(v) > f->max)) abort();
        break;
    case F_STR_ARRAY:
    case F_INT_ARRAY: {
        if (!json_is_array(v)) abort();
        size_t n = json_array_size(v), i;
        if ((long long)n < f->min || (f->max && (long long)n > f->max)) abort();
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (f->type == F_INT_ARRAY && !json_is_integer(item)) abort();
            if (f->type == F_STR_ARRAY &&
                (!json_is_string(item) ||
                 !control_free(json_string_value(item), json_string_length(item))))
                abort();
        }
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    fz_input in;
    fz_split(&in, data, size, 1);
    const bic_route *r = pick(in.field[0]);
    json_t *obj = NULL;
    char msg[256];
    bic_err e = json_body_parse(in.rest, in.rest_len, r->fields, &obj, msg, sizeof(msg));
    if (e == BIC_E_OK) {
        if (!json_is_object(obj)) abort();
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v)
        {
            const bic_field *f = r->fields;
            while (f->name && strcmp(f->name, k))
                f++;
            if (!f->name) abort(); /* an undeclared key got through */
            obeys(f, v);
        }
        for (const bic_field *f = r->fields; f->name; f++) {
            if (f->required && !json_object_get(obj, f->name)) abort();
            (void)json_get_str(obj, f->name, NULL);
            (void)json_get_int(obj, f->name, 0);
            (void)json_get_bool(obj, f->name, false);
        }
        json_decref(obj);
    } else {
        if (obj) abort();
        if (e != BIC_E_BAD_JSON && e != BIC_E_VALIDATION) abort();
        if (!memchr(msg, '\0', sizeof(msg)) || !msg[0]) abort();
    }
    fz_free(&in);
    return 0;
}
