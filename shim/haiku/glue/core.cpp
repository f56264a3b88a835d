// SPDX-License-Identifier: BSD-2-Clause
/*
 * Locks, kernel memory, time and user copies for NVMM on Haiku.
 *
 * Haiku's world: Haiku's kernel headers only (C++), the primitives behind the
 * plain C declarations of nvmm_haiku.h.  Haiku's mutex and rw_lock do not
 * tell who holds them outside KDEBUG builds, so each is paired with the
 * thread that holds it exclusively: NVMM asserts ownership (os_mtx_owned,
 * os_rwl_wheld) and releases read and write holds with the same call.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <KernelExport.h>
#include <OS.h>

#include <kernel.h>
#include <lock.h>
#include <thread.h>

#include "nvmm_haiku.h"
#include "nvmm_haiku_glue.h"


struct nvmm_mutex {
	mutex		lock;
	thread_id	owner;		// holder, or -1
};

struct nvmm_rwlock {
	rw_lock		lock;
	thread_id	writer;		// holder for writing, or -1
};

static_assert(sizeof(nvmm_mutex) <= sizeof(nvmm_haiku_mutex),
	"enlarge struct nvmm_haiku_mutex in nvmm_haiku.h");
static_assert(sizeof(nvmm_rwlock) <= sizeof(nvmm_haiku_rwlock),
	"enlarge struct nvmm_haiku_rwlock in nvmm_haiku.h");
static_assert(alignof(nvmm_mutex) <= alignof(nvmm_haiku_mutex),
	"struct nvmm_haiku_mutex is not aligned enough");
static_assert(alignof(nvmm_rwlock) <= alignof(nvmm_haiku_rwlock),
	"struct nvmm_haiku_rwlock is not aligned enough");


static inline nvmm_mutex*
to_mutex(nvmm_haiku_mutex* lock)
{
	return reinterpret_cast<nvmm_mutex*>(lock);
}


static inline nvmm_rwlock*
to_rwlock(nvmm_haiku_rwlock* lock)
{
	return reinterpret_cast<nvmm_rwlock*>(lock);
}


extern "C" void
nvmm_haiku_mtx_init(nvmm_haiku_mutex* lock)
{
	nvmm_mutex* mtx = to_mutex(lock);

	mutex_init(&mtx->lock, "nvmm mutex");
	mtx->owner = -1;
}


extern "C" void
nvmm_haiku_mtx_destroy(nvmm_haiku_mutex* lock)
{
	mutex_destroy(&to_mutex(lock)->lock);
}


/*!	NVMM takes some mutexes with preemption off (the VMX ASID lock inside
	vmx_vmcs_enter()): a thread that may not be rescheduled must not block,
	so it spins until the holder, running elsewhere, lets go.
*/
extern "C" void
nvmm_haiku_mtx_lock(nvmm_haiku_mutex* lock)
{
	nvmm_mutex* mtx = to_mutex(lock);

	if (nvmm_haiku_preempt_disabled()) {
		while (mutex_trylock(&mtx->lock) != B_OK)
			cpu_pause();
	} else
		mutex_lock(&mtx->lock);
	__atomic_store_n(&mtx->owner, thread_get_current_thread_id(),
		__ATOMIC_RELAXED);
}


extern "C" void
nvmm_haiku_mtx_unlock(nvmm_haiku_mutex* lock)
{
	nvmm_mutex* mtx = to_mutex(lock);

	__atomic_store_n(&mtx->owner, -1, __ATOMIC_RELAXED);
	mutex_unlock(&mtx->lock);
}


extern "C" bool
nvmm_haiku_mtx_owned(nvmm_haiku_mutex* lock)
{
	return __atomic_load_n(&to_mutex(lock)->owner, __ATOMIC_RELAXED)
		== thread_get_current_thread_id();
}


extern "C" void
nvmm_haiku_rwl_init(nvmm_haiku_rwlock* lock)
{
	nvmm_rwlock* rwl = to_rwlock(lock);

	rw_lock_init(&rwl->lock, "nvmm rwlock");
	rwl->writer = -1;
}


extern "C" void
nvmm_haiku_rwl_destroy(nvmm_haiku_rwlock* lock)
{
	rw_lock_destroy(&to_rwlock(lock)->lock);
}


extern "C" void
nvmm_haiku_rwl_rlock(nvmm_haiku_rwlock* lock)
{
	rw_lock_read_lock(&to_rwlock(lock)->lock);
}


extern "C" void
nvmm_haiku_rwl_wlock(nvmm_haiku_rwlock* lock)
{
	nvmm_rwlock* rwl = to_rwlock(lock);

	rw_lock_write_lock(&rwl->lock);
	__atomic_store_n(&rwl->writer, thread_get_current_thread_id(),
		__ATOMIC_RELAXED);
}


/*!	A thread holding the lock for reading is never its writer: the writer
	field tells the two holds apart.
*/
extern "C" void
nvmm_haiku_rwl_unlock(nvmm_haiku_rwlock* lock)
{
	nvmm_rwlock* rwl = to_rwlock(lock);

	if (__atomic_load_n(&rwl->writer, __ATOMIC_RELAXED)
			== thread_get_current_thread_id()) {
		__atomic_store_n(&rwl->writer, -1, __ATOMIC_RELAXED);
		rw_lock_write_unlock(&rwl->lock);
	} else
		rw_lock_read_unlock(&rwl->lock);
}


extern "C" bool
nvmm_haiku_rwl_wheld(nvmm_haiku_rwlock* lock)
{
	return __atomic_load_n(&to_rwlock(lock)->writer, __ATOMIC_RELAXED)
		== thread_get_current_thread_id();
}


/*!	NVMM's allocations sleep and never fail: no caller checks.  Its requests
	are small (machine and vCPU configuration, per-machine data); the kernel
	heap is asked again until it has the memory.
*/
extern "C" void*
nvmm_haiku_mem_alloc(unsigned long size, bool zero)
{
	void* p;

	while ((p = zero ? calloc(1, size) : malloc(size)) == NULL)
		snooze(10000);
	return p;
}


extern "C" void
nvmm_haiku_mem_free(void* ptr, unsigned long size)
{
	free(ptr);
}


extern "C" long long
nvmm_haiku_time_second(void)
{
	return real_time_clock();
}


/*!	BSD copyin/copyout: 0, or the BSD EFAULT for an address that is not
	the user's or faults.
*/
extern "C" int
nvmm_haiku_copyin(const void* uaddr, void* kaddr, unsigned long len)
{
	if (!is_user_address_range(uaddr, len))
		return NVMM_HAIKU_EFAULT;
	return user_memcpy(kaddr, uaddr, len) == B_OK ? 0 : NVMM_HAIKU_EFAULT;
}


extern "C" int
nvmm_haiku_copyout(const void* kaddr, void* uaddr, unsigned long len)
{
	if (!is_user_address_range(uaddr, len))
		return NVMM_HAIKU_EFAULT;
	return user_memcpy(uaddr, kaddr, len) == B_OK ? 0 : NVMM_HAIKU_EFAULT;
}


/*!	A BSD error number NVMM returned (positive, NetBSD's numbering as
	nvmm_haiku.h lists it) as the Haiku status of the same meaning.
*/
status_t
nvmm_haiku_status(int bsdError)
{
	switch (bsdError) {
		case 0:
			return B_OK;
		case NVMM_HAIKU_EPERM:
			return EPERM;
		case NVMM_HAIKU_ENOENT:
			return ENOENT;
		case NVMM_HAIKU_EIO:
			return EIO;
		case NVMM_HAIKU_ENOMEM:
			return ENOMEM;
		case NVMM_HAIKU_EACCES:
			return EACCES;
		case NVMM_HAIKU_EFAULT:
			return EFAULT;
		case NVMM_HAIKU_EBUSY:
			return EBUSY;
		case NVMM_HAIKU_EEXIST:
			return EEXIST;
		case NVMM_HAIKU_EINVAL:
			return EINVAL;
		case NVMM_HAIKU_EAGAIN:
			return EAGAIN;
		case NVMM_HAIKU_ENOBUFS:
			return ENOBUFS;
		case NVMM_HAIKU_ENOTSUP:
			return ENOTSUP;
		default:
			dprintf("nvmm: unexpected error %d, reported as EINVAL\n",
				bsdError);
			return EINVAL;
	}
}
