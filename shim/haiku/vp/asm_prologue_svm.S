/* SPDX-License-Identifier: BSD-2-Clause */
#include <machine/asm.h>
#include "nvmm_haiku.h"
