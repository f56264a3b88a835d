/* Host debug registers: Linux reloads its own breakpoints after the guest ran (nvmm_linux.c). */
#include "nvmm_linux.h"
static inline void
x86_curthread_save_dbregs(uint64_t *drs)
{
	nvmm_linux_dbregs_save(drs);
}
static inline void
x86_curthread_restore_dbregs(uint64_t *drs)
{
	nvmm_linux_dbregs_restore(drs);
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
