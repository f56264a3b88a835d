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

#if defined(__NetBSD__)
#include <sys/cpu.h>
#include <sys/kmem.h>
#include <sys/mutex.h>
#include <sys/xcall.h>
#include <uvm/uvm_extern.h>
#elif defined(__DragonFly__)
#include <sys/lock.h>
#include <sys/malloc.h>
#include <sys/thread2.h>
#include <vm/vm_extern.h>
#include <machine/smp.h>
#elif defined(__toyos__)
#line 129 "toyos/target.toml"
#include "toyos_kernel.h"
#line 31 "driver/nvmm_os.h"
#endif

#if defined(__DragonFly__) || defined(__NetBSD__)
typedef struct vmspace		os_vmspace_t;
#elif defined(__toyos__)
#line 23 "toyos/target.toml"
typedef struct toy_gspace	os_vmspace_t;
#line 39 "driver/nvmm_os.h"
#endif

#ifdef __DragonFly__
/* Spellings the core borrows from NetBSD; not part of the contract. */
typedef vm_offset_t		vaddr_t;
#define __arraycount(a)	(sizeof(a) / sizeof((a)[0]))
#define uimin(a, b)		((a) < (b) ? (a) : (b))
#endif

#if defined(__NetBSD__)
typedef kmutex_t		os_mtx_t;
typedef struct cpu_info		os_cpu_t;

#define os_kernel_map		kernel_map
#define os_printf		printf
#define OS_ASSERT		KASSERT
#define OS_MAXCPUS		MAXCPUS

#define os_mtx_init(m)		mutex_init(m, MUTEX_DEFAULT, IPL_NONE)
#define os_mtx_lock(m)		mutex_enter(m)
#define os_mtx_unlock(m)	mutex_exit(m)
#define os_mem_zalloc(sz)	kmem_zalloc(sz, KM_SLEEP)
#define os_mem_free(p, sz)	kmem_free(p, sz)
#define os_atomic_inc_uint(p)	atomic_inc_uint(p)
#define os_curcpu_number()	cpu_index(curcpu())
#define OS_IPI_FUNC(fn)	void fn(void *arg, void *unused)
#define os_pmap_mach(pmap)	((pmap)->pm_data)
#elif defined(__DragonFly__)
typedef struct lock		os_mtx_t;
typedef struct globaldata	os_cpu_t;

#define os_kernel_map		(&kernel_map)
#define os_printf		kprintf
#define OS_ASSERT		KKASSERT
#define OS_MAXCPUS		SMP_MAXCPU

#define os_mtx_init(m)		lockinit(m, "nvmmlk", 0, 0)
#define os_mtx_lock(m)		lockmgr(m, LK_EXCLUSIVE)
#define os_mtx_unlock(m)	lockmgr(m, LK_RELEASE)
#define os_mem_zalloc(sz)	kmalloc(sz, M_DEVBUF, M_WAITOK | M_ZERO)
#define os_mem_free(p, sz)	kfree(p, M_DEVBUF)
#define os_atomic_inc_uint(p)	atomic_add_int(p, 1)
#define os_curcpu_number()	(mycpu->gd_cpuid)
#define OS_IPI_FUNC(fn)	void fn(void *arg)
#define curlwp_bind()		(crit_enter(), 0)
#define curlwp_bindx(b)		((void)(b), crit_exit())
#elif defined(__toyos__)
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
#line 119 "driver/nvmm_os.h"
#endif

#if defined(__NetBSD__)
static inline void
os_ipi_broadcast(void (*fn)(void *, void *), void *arg)
{
	uint64_t ticket;

	ticket = xc_broadcast(0, fn, arg, NULL);
	xc_wait(ticket);
}
#elif defined(__DragonFly__)
static inline void
os_ipi_broadcast(void (*fn)(void *), void *arg)
{
	lwkt_cpusync_simple(smp_active_mask, fn, arg);
}
#elif defined(__toyos__)
#line 103 "toyos/target.toml"
static inline void
os_ipi_broadcast(void (*func)(void *), void *arg)
{
	toy_run_on_all_cpus(func, arg);
}
#line 144 "driver/nvmm_os.h"
#endif

static inline int
os_return_needed(void)
{
#if defined(__NetBSD__)
	if (preempt_needed())
		return 1;
	return (curlwp->l_flag & LW_USERRET) != 0;
#elif defined(__DragonFly__)
	return (mycpu->gd_reqflags & RQF_AST_MASK) != 0;
#elif defined(__toyos__)
#line 110 "toyos/target.toml"
	return toy_thread_should_yield();
#line 159 "driver/nvmm_os.h"
#endif
}

/* ------------------------------------------------------------------- */

os_vmspace_t *os_vmspace_create(vaddr_t, vaddr_t);
int os_vmspace_fault(os_vmspace_t *, vaddr_t, vm_prot_t);
void *os_pagemem_zalloc(size_t);
void os_pagemem_free(void *, size_t);

#endif /* _NVMM_OS_H_ */
