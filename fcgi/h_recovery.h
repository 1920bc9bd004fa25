/*
 * h_recovery.h - body field tables of the failure recovery routes (routes_recovery.def),
 * included by handlers.h so that routes.c sees them.
 */
#ifndef BIC_H_RECOVERY_H
#define BIC_H_RECOVERY_H

#include "json.h"

extern const bic_field fields_recovery_settings[], fields_server_bmc[], fields_recovery_note[];

#endif
