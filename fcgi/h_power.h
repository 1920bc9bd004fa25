/* h_power.h - field tables of the power and balancing routes (h_power.c, routes_power.def). */
#ifndef BIC_H_POWER_H
#define BIC_H_POWER_H

#include "json.h"

extern const bic_field fields_power_settings[], fields_balance_settings[];
extern const bic_field fields_server_power[], fields_server_power_config[];

#endif
