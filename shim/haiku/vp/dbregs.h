/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Host debug registers around guest execution, Haiku.  In kernel mode the
 * registers hold the kernel's own breakpoints (Haiku installs the kernel
 * team's at every entry from user mode and keeps the user's DR6/DR7 in the
 * CPU structure until it returns), so the live values are saved before the
 * guest's are loaded and put back after it ran, DR7 last so that no
 * breakpoint is armed with a stale address.
 */
#include "nvmm_haiku.h"
static inline void
x86_curthread_save_dbregs(uint64_t *drs)
{
	drs[NVMM_X64_DR_DR0] = rdr0();
	drs[NVMM_X64_DR_DR1] = rdr1();
	drs[NVMM_X64_DR_DR2] = rdr2();
	drs[NVMM_X64_DR_DR3] = rdr3();
	drs[NVMM_X64_DR_DR6] = rdr6();
	drs[NVMM_X64_DR_DR7] = rdr7();
}
static inline void
x86_curthread_restore_dbregs(uint64_t *drs)
{
	ldr0(drs[NVMM_X64_DR_DR0]);
	ldr1(drs[NVMM_X64_DR_DR1]);
	ldr2(drs[NVMM_X64_DR_DR2]);
	ldr3(drs[NVMM_X64_DR_DR3]);
	ldr6(drs[NVMM_X64_DR_DR6]);
	ldr7(drs[NVMM_X64_DR_DR7]);
}
#define x86_get_dr0()		rdr0()
#define x86_get_dr1()		rdr1()
#define x86_get_dr2()		rdr2()
#define x86_get_dr3()		rdr3()
#define x86_get_dr6()		rdr6()
#define x86_get_dr7()		rdr7()
#define x86_set_dr0(v)		ldr0(v)
#define x86_set_dr1(v)		ldr1(v)
#define x86_set_dr2(v)		ldr2(v)
#define x86_set_dr3(v)		ldr3(v)
#define x86_set_dr6(v)		ldr6(v)
#define x86_set_dr7(v)		ldr7(v)
