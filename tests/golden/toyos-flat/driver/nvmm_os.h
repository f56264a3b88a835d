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

#include "toyos_kernel.h"

typedef struct toy_gspace	os_vmspace_t;


typedef struct toy_mutex	os_mtx_t;
typedef struct toy_cpu		os_cpu_t;
#define os_kernel_map		toy_kernel_space()
#define os_printf		toy_log
#define OS_ASSERT		TOY_ASSERT
#define OS_MAXCPUS		TOY_MAX_CPUS
#define os_mtx_init(lock)	toy_mutex_init(lock)
#define os_mtx_lock(lock)	toy_mutex_lock(lock)
#define os_mtx_unlock(lock)	toy_mutex_unlock(lock)
#define os_mem_zalloc(size)	toy_zalloc(size)
#define os_mem_free(ptr, size)	toy_free(ptr, size)
#define os_atomic_inc_uint(x)	__atomic_add_fetch(x, 1, __ATOMIC_RELAXED)
#define os_curcpu_number()	toy_cpu_index()
#define OS_IPI_FUNC(func)	void func(void *arg)
#define curlwp_bind()		toy_pin_thread()
#define curlwp_bindx(b)		toy_unpin_thread(b)

static inline void
os_ipi_broadcast(void (*func)(void *), void *arg)
{
	toy_run_on_all_cpus(func, arg);
}

static inline int
os_return_needed(void)
{
	return toy_thread_should_yield();
}

/* ------------------------------------------------------------------- */

os_vmspace_t *os_vmspace_create(vaddr_t, vaddr_t);
int os_vmspace_fault(os_vmspace_t *, vaddr_t, vm_prot_t);
void *os_pagemem_zalloc(size_t);
void os_pagemem_free(void *, size_t);

#endif /* _NVMM_OS_H_ */
