/*
 * fuzz_common.h - what the libFuzzer targets in tests/fuzz/ share.
 *
 * The targets drive bicd's and bic-agent's own code (the objects `make fuzz` builds from
 * fcgi/ and agent/ with -fsanitize=fuzzer-no-link,address,undefined), never a copy of it.
 * An input is split into text fields at '\n' (each field is a C string: it ends at the
 * first NUL too), and what follows the last field is a byte string (a body).
 */
#ifndef BIC_FUZZ_COMMON_H
#define BIC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FZ_MAX_FIELDS 16

typedef struct {
    char *field[FZ_MAX_FIELDS]; /* malloc'd, NUL-terminated; "" when the input ran out */
    size_t nfields;
    char *rest; /* malloc'd copy of the remaining bytes (plus a NUL), length rest_len */
    size_t rest_len;
} fz_input;

/* Splits data into n text fields (n <= FZ_MAX_FIELDS) and the remaining bytes. */
static inline void fz_split(fz_input *in, const uint8_t *data, size_t size, size_t n)
{
    size_t pos = 0;
    in->nfields = n;
    for (size_t i = 0; i < n; i++) {
        size_t end = pos;
        while (end < size && data[end] != '\n')
            end++;
        size_t len = end - pos;
        in->field[i] = malloc(len + 1);
        memcpy(in->field[i], data + pos, len);
        in->field[i][len] = '\0';
        pos = end < size ? end + 1 : size;
    }
    in->rest_len = size - pos;
    in->rest = malloc(in->rest_len + 1);
    memcpy(in->rest, data + pos, in->rest_len);
    in->rest[in->rest_len] = '\0';
}

/* A field, or NULL when it is empty (an absent header). */
static inline const char *fz_opt(const fz_input *in, size_t i)
{
    return i < in->nfields && in->field[i][0] ? in->field[i] : NULL;
}

static inline void fz_free(fz_input *in)
{
    for (size_t i = 0; i < in->nfields; i++)
        free(in->field[i]);
    free(in->rest);
    memset(in, 0, sizeof(*in));
}

#endif
