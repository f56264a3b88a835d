// SPDX-License-Identifier: BSD-2-Clause
/*
 * Locks, memory, messages and user copies.  Linux world: Linux headers only, the primitives behind
 * the plain C declarations of nvmm_linux.h.
 */

#include <linux/build_bug.h>
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/kref.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/printk.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vmalloc.h>
#include <asm/apic.h>
#include <asm/cpu_entry_area.h>
#include <asm/debugreg.h>
#include <asm/desc.h>
#include <asm/fpu/api.h>
#include <asm/fpu/xcr.h>
#include <asm/msr.h>
#include <asm/nmi.h>
#include <asm/special_insns.h>

#include "nvmm_linux.h"
#define NPT_OS_TYPES_INCLUDED
#include "nvmm_npt.h"

/*
 * A mutex and a read/write semaphore that remember their writer: NVMM asserts ownership
 * (os_mtx_owned, os_rwl_wheld) and releases read and write holds with the same call.
 */
struct nvmm_mutex {
	struct mutex mutex;		/* the lock */
	struct task_struct *owner;	/* its holder, or NULL */
};

struct nvmm_rwlock {
	struct rw_semaphore sem;	/* the lock */
	struct task_struct *writer;	/* its holder for writing, or NULL */
};

static_assert(sizeof(struct nvmm_mutex) <= sizeof(struct nvmm_linux_mutex),
	      "enlarge struct nvmm_linux_mutex in nvmm_linux.h for this kernel configuration");
static_assert(sizeof(struct nvmm_rwlock) <= sizeof(struct nvmm_linux_rwlock),
	      "enlarge struct nvmm_linux_rwlock in nvmm_linux.h for this kernel configuration");
static_assert(__alignof__(struct nvmm_mutex) <= __alignof__(struct nvmm_linux_mutex));
static_assert(__alignof__(struct nvmm_rwlock) <= __alignof__(struct nvmm_linux_rwlock));

static inline struct nvmm_mutex *to_mutex(struct nvmm_linux_mutex *lock)
{
	return (struct nvmm_mutex *)lock;
}

static inline struct nvmm_rwlock *to_rwlock(struct nvmm_linux_rwlock *lock)
{
	return (struct nvmm_rwlock *)lock;
}

void nvmm_linux_mtx_init(struct nvmm_linux_mutex *lock)
{
	struct nvmm_mutex *mtx = to_mutex(lock);

	mutex_init(&mtx->mutex);
	mtx->owner = NULL;
}

void nvmm_linux_mtx_destroy(struct nvmm_linux_mutex *lock)
{
	mutex_destroy(&to_mutex(lock)->mutex);
}

/*
 * NVMM's own might_sleep(): the glue's primitives that may sleep say so when called where the caller
 * cannot (preemption or interrupts off).  Debian's kernels, PREEMPT_RT's included, are built without
 * DEBUG_ATOMIC_SLEEP, so the kernel's own check is not there; this one is, on every kernel, and
 * prints a WARNING the end-to-end run fails on.
 */
static inline void nvmm_linux_may_sleep(const char *what)
{
	WARN_ONCE(!preemptible(), "nvmm: %s may sleep, called with preemption or interrupts off\n", what);
}

/*
 * NVMM takes one mutex with preemption off: the VMX ASID lock, inside vmx_vmcs_enter() when a
 * vCPU is created or destroyed.  mutex_lock() may sleep, which is a bug there (and, on PREEMPT_RT,
 * a real sleep in atomic context); every holder of that lock holds it with preemption off too, so
 * it is never held by a preempted task and spinning on mutex_trylock() ends.
 */
void nvmm_linux_mtx_lock(struct nvmm_linux_mutex *lock)
{
	struct nvmm_mutex *mtx = to_mutex(lock);

	if (preemptible()) {
		mutex_lock(&mtx->mutex);
	} else {
		while (!mutex_trylock(&mtx->mutex))
			cpu_relax();
	}
	WRITE_ONCE(mtx->owner, current);
}

void nvmm_linux_mtx_unlock(struct nvmm_linux_mutex *lock)
{
	struct nvmm_mutex *mtx = to_mutex(lock);

	WRITE_ONCE(mtx->owner, NULL);
	mutex_unlock(&mtx->mutex);
}

/* Held, and by this task: a lock released early (or twice) is not owned, and OS_ASSERT says so. */
bool nvmm_linux_mtx_owned(struct nvmm_linux_mutex *lock)
{
	struct nvmm_mutex *mtx = to_mutex(lock);

	return mutex_is_locked(&mtx->mutex) && READ_ONCE(mtx->owner) == current;
}

void nvmm_linux_rwl_init(struct nvmm_linux_rwlock *lock)
{
	struct nvmm_rwlock *rwl = to_rwlock(lock);

	init_rwsem(&rwl->sem);
	rwl->writer = NULL;
}

void nvmm_linux_rwl_destroy(struct nvmm_linux_rwlock *lock)
{
	WARN_ON_ONCE(rwsem_is_locked(&to_rwlock(lock)->sem));
}

void nvmm_linux_rwl_rlock(struct nvmm_linux_rwlock *lock)
{
	nvmm_linux_may_sleep("os_rwl_rlock");
	down_read(&to_rwlock(lock)->sem);
}

void nvmm_linux_rwl_wlock(struct nvmm_linux_rwlock *lock)
{
	struct nvmm_rwlock *rwl = to_rwlock(lock);

	nvmm_linux_may_sleep("os_rwl_wlock");
	down_write(&rwl->sem);
	WRITE_ONCE(rwl->writer, current);
}

/* A thread holding the lock for reading is never its writer: the writer field tells them apart. */
void nvmm_linux_rwl_unlock(struct nvmm_linux_rwlock *lock)
{
	struct nvmm_rwlock *rwl = to_rwlock(lock);

	if (READ_ONCE(rwl->writer) == current) {
		WRITE_ONCE(rwl->writer, NULL);
		up_write(&rwl->sem);
	} else {
		up_read(&rwl->sem);
	}
}

bool nvmm_linux_rwl_wheld(struct nvmm_linux_rwlock *lock)
{
	return READ_ONCE(to_rwlock(lock)->writer) == current;
}

/*
 * NVMM's allocations sleep and never fail: no caller checks.  Its requests are small (machine and
 * vCPU configuration, per-machine data), which __GFP_NOFAIL serves; a larger one falls back to
 * vmalloc and waits for memory rather than return NULL.
 */
void *nvmm_linux_mem_alloc(unsigned long size, bool zero)
{
	gfp_t gfp = GFP_KERNEL_ACCOUNT | (zero ? __GFP_ZERO : 0);
	void *p;

	nvmm_linux_may_sleep("os_mem_alloc");
	if (size <= 2 * PAGE_SIZE)
		return kmalloc(size, gfp | __GFP_NOFAIL);
	while (!(p = kvmalloc(size, gfp)))
		schedule_timeout_uninterruptible(1);
	return p;
}

void nvmm_linux_mem_free(void *ptr, unsigned long size)
{
	kvfree(ptr);
}

int nvmm_linux_printf(const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;
	int n;

	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	n = pr_info("%pV", &vaf);
	va_end(args);
	return n;
}

long long nvmm_linux_time_second(void)
{
	return ktime_get_real_seconds();
}

/* BSD copyin/copyout: 0 or EFAULT (the BSD and Linux numbers agree), positive. */
int nvmm_linux_copyin(const void *uaddr, void *kaddr, unsigned long len)
{
	nvmm_linux_may_sleep("copyin");
	return copy_from_user(kaddr, (const void __user *)uaddr, len) ? EFAULT : 0;
}

int nvmm_linux_copyout(const void *kaddr, void *uaddr, unsigned long len)
{
	nvmm_linux_may_sleep("copyout");
	return copy_to_user((void __user *)uaddr, kaddr, len) ? EFAULT : 0;
}
