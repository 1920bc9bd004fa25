#include "errors.h"

static const struct {
    int status;
    const char *name;
    const char *message;
} bic_err_table[BIC_E__MAX] = {
#define BIC_X_ROW(name, status, wire, msg) [BIC_E_##name] = {status, wire, msg},
    BIC_ERRORS(BIC_X_ROW)
#undef BIC_X_ROW
};

int bic_err_status(bic_err e)
{
    return (e >= 0 && e < BIC_E__MAX) ? bic_err_table[e].status : 500;
}

const char *bic_err_name(bic_err e)
{
    return (e >= 0 && e < BIC_E__MAX) ? bic_err_table[e].name : "internal";
}

const char *bic_err_message(bic_err e)
{
    return (e >= 0 && e < BIC_E__MAX) ? bic_err_table[e].message : "internal error";
}
