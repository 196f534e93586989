/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder. */
#include "terok/runtime.h"
static const terok_runtime_ops ops = {.struct_size = sizeof(terok_runtime_ops)};
TEROK_PLUGIN_DEFINE(TEROK_PLUGIN_KIND_RUNTIME, "null", "0.1.0", &ops)
