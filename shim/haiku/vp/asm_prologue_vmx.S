/* SPDX-License-Identifier: BSD-2-Clause */
#include <machine/asm.h>
#include "nvmm_haiku.h"
/*
 * A Haiku kernel add-on is a shared object: an absolute 32-bit address of a
 * local string (movq $.Lvmx_validstr,%rdi, the panic message of the failure
 * paths) cannot be relocated there.  This macro loads those two strings
 * RIP-relative instead and assembles every other movq unchanged (all of this
 * file's have a 64-bit register operand, which gives mov its size).
 */
.macro movq src:req, dst:req
.ifc \src,$.Lvmx_validstr
	leaq	.Lvmx_validstr(%rip), \dst
.else
.ifc \src,$.Lvmx_invalidstr
	leaq	.Lvmx_invalidstr(%rip), \dst
.else
	mov	\src, \dst
.endif
.endif
.endm
