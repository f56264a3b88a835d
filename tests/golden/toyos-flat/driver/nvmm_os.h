/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

/*
 * The OS contract.  The core and the backends reach the host kernel only
 * through the names defined here; a port provides its own version.
 */

#ifndef _NVMM_OS_H_
#define _NVMM_OS_H_

#ifndef _KERNEL
#error "nvmm_os.h is for the kernel only"
#endif

#line 129 "toyos/target.toml"
#include "toyos_kernel.h"

#line 23 "toyos/target.toml"
typedef struct toy_gspace	os_vmspace_t;


#line 27 "toyos/target.toml"
typedef struct toy_mutex	os_mtx_t;
#line 31 "toyos/target.toml"
typedef struct toy_cpu		os_cpu_t;
#line 35 "toyos/target.toml"
#define os_kernel_map		toy_kernel_space()
#line 39 "toyos/target.toml"
#define os_printf		toy_log
#line 43 "toyos/target.toml"
#define OS_ASSERT		TOY_ASSERT
#line 47 "toyos/target.toml"
#define OS_MAXCPUS		TOY_MAX_CPUS
#line 52 "toyos/target.toml"
#define os_mtx_init(lock)	toy_mutex_init(lock)
#line 57 "toyos/target.toml"
#define os_mtx_lock(lock)	toy_mutex_lock(lock)
#line 62 "toyos/target.toml"
#define os_mtx_unlock(lock)	toy_mutex_unlock(lock)
#line 67 "toyos/target.toml"
#define os_mem_zalloc(size)	toy_zalloc(size)
#line 72 "toyos/target.toml"
#define os_mem_free(ptr, size)	toy_free(ptr, size)
#line 77 "toyos/target.toml"
#define os_atomic_inc_uint(x)	__atomic_add_fetch(x, 1, __ATOMIC_RELAXED)
#line 82 "toyos/target.toml"
#define os_curcpu_number()	toy_cpu_index()
#line 87 "toyos/target.toml"
#define OS_IPI_FUNC(func)	void func(void *arg)
#line 95 "toyos/target.toml"
#define curlwp_bind()		toy_pin_thread()
#line 100 "toyos/target.toml"
#define curlwp_bindx(b)		toy_unpin_thread(b)

#line 103 "toyos/target.toml"
static inline void
os_ipi_broadcast(void (*func)(void *), void *arg)
{
	toy_run_on_all_cpus(func, arg);
}
#line 62 "driver/nvmm_os.h"

static inline int
os_return_needed(void)
{
#line 110 "toyos/target.toml"
	return toy_thread_should_yield();
#line 69 "driver/nvmm_os.h"
}

/* ------------------------------------------------------------------- */

os_vmspace_t *os_vmspace_create(vaddr_t, vaddr_t);
int os_vmspace_fault(os_vmspace_t *, vaddr_t, vm_prot_t);
void *os_pagemem_zalloc(size_t);
void os_pagemem_free(void *, size_t);

#endif /* _NVMM_OS_H_ */
