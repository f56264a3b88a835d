// SPDX-License-Identifier: BSD-2-Clause
/*
 * Locks, memory, messages, user copies and CPUs.  Hosted world: the C library's headers only, the
 * primitives behind the plain C declarations of nvmm_hosted.h.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nvmm_hosted.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NVMM_HOSTED_ASAN 1
#endif
#endif

_Static_assert(sizeof(pthread_mutex_t) <= sizeof(((struct nvmm_hosted_mutex *)0)->opaque),
	       "pthread_mutex_t does not fit nvmm_hosted_mutex");
_Static_assert(sizeof(pthread_rwlock_t) <= sizeof(((struct nvmm_hosted_rwlock *)0)->opaque),
	       "pthread_rwlock_t does not fit nvmm_hosted_rwlock");

static void *
nvmm_hosted_self(void)
{
	return (void *)pthread_self();
}

static void
nvmm_hosted_check(int error, const char *what)
{
	if (error != 0)
		panic("nvmm: %s: %s\n", what, strerror(error));
}

/* Locks: error-checking mutexes, so an unlock by a thread that does not hold it is caught. */

void nvmm_hosted_mtx_init(struct nvmm_hosted_mutex *lock)
{
	pthread_mutexattr_t attr;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	nvmm_hosted_check(pthread_mutex_init((pthread_mutex_t *)lock->opaque, &attr), "mutex init");
	pthread_mutexattr_destroy(&attr);
	lock->owner = NULL;
}

void nvmm_hosted_mtx_destroy(struct nvmm_hosted_mutex *lock)
{
	nvmm_hosted_check(pthread_mutex_destroy((pthread_mutex_t *)lock->opaque), "mutex destroy");
}

void nvmm_hosted_mtx_lock(struct nvmm_hosted_mutex *lock)
{
	nvmm_hosted_check(pthread_mutex_lock((pthread_mutex_t *)lock->opaque), "mutex lock");
	lock->owner = nvmm_hosted_self();
}

void nvmm_hosted_mtx_unlock(struct nvmm_hosted_mutex *lock)
{
	if (lock->owner != nvmm_hosted_self())
		panic("nvmm: mutex %p released by a thread that does not hold it\n", (void *)lock);
	lock->owner = NULL;
	nvmm_hosted_check(pthread_mutex_unlock((pthread_mutex_t *)lock->opaque), "mutex unlock");
}

_Bool nvmm_hosted_mtx_owned(struct nvmm_hosted_mutex *lock)
{
	return __atomic_load_n(&lock->owner, __ATOMIC_RELAXED) == nvmm_hosted_self();
}

void nvmm_hosted_rwl_init(struct nvmm_hosted_rwlock *lock)
{
	nvmm_hosted_check(pthread_rwlock_init((pthread_rwlock_t *)lock->opaque, NULL), "rwlock init");
	lock->writer = NULL;
}

void nvmm_hosted_rwl_destroy(struct nvmm_hosted_rwlock *lock)
{
	nvmm_hosted_check(pthread_rwlock_destroy((pthread_rwlock_t *)lock->opaque), "rwlock destroy");
}

void nvmm_hosted_rwl_rlock(struct nvmm_hosted_rwlock *lock)
{
	nvmm_hosted_check(pthread_rwlock_rdlock((pthread_rwlock_t *)lock->opaque), "rwlock read lock");
}

void nvmm_hosted_rwl_wlock(struct nvmm_hosted_rwlock *lock)
{
	nvmm_hosted_check(pthread_rwlock_wrlock((pthread_rwlock_t *)lock->opaque), "rwlock write lock");
	lock->writer = nvmm_hosted_self();
}

void nvmm_hosted_rwl_unlock(struct nvmm_hosted_rwlock *lock)
{
	if (lock->writer == nvmm_hosted_self())
		lock->writer = NULL;
	nvmm_hosted_check(pthread_rwlock_unlock((pthread_rwlock_t *)lock->opaque), "rwlock unlock");
}

_Bool nvmm_hosted_rwl_wheld(struct nvmm_hosted_rwlock *lock)
{
	return __atomic_load_n(&lock->writer, __ATOMIC_RELAXED) == nvmm_hosted_self();
}

/*
 * Memory.  The kernels' allocators never fail these (KM_SLEEP, M_WAITOK): neither does this one.
 * kmem_free() takes the size allocated; under ASan malloc_usable_size() is exactly the size asked
 * for, so a free with another size is reported.
 */

void *nvmm_hosted_mem_alloc(unsigned long size, _Bool zero)
{
	void *p = zero ? calloc(1, size ? size : 1) : malloc(size ? size : 1);

	if (p == NULL)
		panic("nvmm: out of memory allocating %lu bytes\n", size);
	return p;
}

void nvmm_hosted_mem_free(void *ptr, unsigned long size)
{
#ifdef NVMM_HOSTED_ASAN
	if (ptr != NULL && size != 0 && malloc_usable_size(ptr) != size)
		panic("nvmm: os_mem_free(%p, %lu) of a block of %zu bytes\n", ptr, size,
		      malloc_usable_size(ptr));
#else
	(void)size;
#endif
	free(ptr);
}

void *os_pagemem_zalloc(unsigned long size)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, size ? size : 1) != 0)
		panic("nvmm: out of memory allocating %lu page bytes\n", size);
	memset(p, 0, size);
	return p;
}

void os_pagemem_free(void *ptr, unsigned long size)
{
	(void)size;
	free(ptr);
}

/* A process has no physical addresses: a page's "physical address" is its own address. */
unsigned long os_pa_zalloc(void)
{
	return (unsigned long)os_pagemem_zalloc(4096);
}

void os_pa_free(unsigned long pa)
{
	free((void *)pa);
}

int os_contigpa_zalloc(unsigned long *pa, unsigned long *va, unsigned long npages)
{
	*va = (unsigned long)os_pagemem_zalloc(npages * 4096);
	*pa = *va;
	return 0;
}

void os_contigpa_free(unsigned long pa, unsigned long va, unsigned long npages)
{
	(void)pa;
	(void)npages;
	free((void *)va);
}

/* Messages and failures: a panic is an abort, which ASan and libFuzzer report with its stack. */

int nvmm_hosted_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vfprintf(stderr, fmt, ap);
	va_end(ap);
	return n;
}

void panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	abort();
}

long long nvmm_hosted_time_second(void)
{
	return (long long)time(NULL);
}

/*
 * User copies.  A kernel's copyin() returns EFAULT for an address the process cannot read instead
 * of faulting; here a pipe does the probing, since write(2) and read(2) fail with EFAULT where the
 * process has no such memory.  ASan checks the buffers of write(2) and read(2) too, so a copy that
 * strays out of an object the caller allocated is reported, not silently served.
 */

static pthread_mutex_t nvmm_hosted_copy_lock = PTHREAD_MUTEX_INITIALIZER;
static int nvmm_hosted_copy_pipe[2] = { -1, -1 };

static int nvmm_hosted_copy(const void *src, void *dst, unsigned long len)
{
	unsigned long done = 0;
	int error = 0;

	pthread_mutex_lock(&nvmm_hosted_copy_lock);
	if (nvmm_hosted_copy_pipe[0] < 0 && pipe(nvmm_hosted_copy_pipe) != 0)
		panic("nvmm: pipe: %s\n", strerror(errno));
	while (done < len && error == 0) {
		size_t chunk = len - done > 4096 ? 4096 : len - done;
		/* user addresses are numbers, not objects: no pointer arithmetic on them (NULL + 0 is UB) */
		ssize_t n = write(nvmm_hosted_copy_pipe[1], (const void *)((uintptr_t)src + done), chunk);

		if (n < 0) {
			error = errno == EFAULT ? EFAULT : EIO;
			break;
		}
		if (read(nvmm_hosted_copy_pipe[0], (void *)((uintptr_t)dst + done), (size_t)n) != n) {
			error = EFAULT;
			/* drain what the failed read left in the pipe */
			char sink[4096];
			while (read(nvmm_hosted_copy_pipe[0], sink, sizeof(sink)) == (ssize_t)sizeof(sink))
				;
			break;
		}
		done += (unsigned long)n;
	}
	pthread_mutex_unlock(&nvmm_hosted_copy_lock);
	return error;
}

int nvmm_hosted_copyin(const void *uaddr, void *kaddr, unsigned long len)
{
	return nvmm_hosted_copy(uaddr, kaddr, len);
}

int nvmm_hosted_copyout(const void *kaddr, void *uaddr, unsigned long len)
{
	return nvmm_hosted_copy(kaddr, uaddr, len);
}

/* CPUs.  The process runs on the host's CPUs; there are no IPIs, so a cross-CPU call runs here. */

struct nvmm_hosted_cpu nvmm_hosted_cpus[NVMM_HOSTED_MAXCPUS];
static __thread int nvmm_hosted_preempt_depth;
static __thread int nvmm_hosted_signals;	/* pending "signals": os_return_needed() */

int nvmm_hosted_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);

	if (n < 1)
		n = 1;
	return n > NVMM_HOSTED_MAXCPUS ? NVMM_HOSTED_MAXCPUS : (int)n;
}

int nvmm_hosted_curcpu_number(void)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : cpu % nvmm_hosted_ncpus();
}

void nvmm_hosted_preempt_disable(void)
{
	nvmm_hosted_preempt_depth++;
}

void nvmm_hosted_preempt_enable(void)
{
	if (nvmm_hosted_preempt_depth <= 0)
		panic("nvmm: os_preempt_enable() without os_preempt_disable()\n");
	nvmm_hosted_preempt_depth--;
}

_Bool nvmm_hosted_preempt_disabled(void)
{
	return nvmm_hosted_preempt_depth > 0;
}

int nvmm_hosted_thread_bind(void)
{
	return 0;
}

void nvmm_hosted_thread_unbind(int bound)
{
	(void)bound;
}

/* A signal arrived for this thread (nvmm_hosted_api.h): the next os_return_needed() says so. */
void nvmm_hosted_raise_signal(void)
{
	nvmm_hosted_signals++;
}

void nvmm_hosted_clear_signals(void)
{
	nvmm_hosted_signals = 0;
}

_Bool nvmm_hosted_return_needed(void)
{
	if (nvmm_hosted_signals == 0)
		return 0;
	nvmm_hosted_signals--;
	return 1;
}

void nvmm_hosted_ipi_unicast(int cpu, void (*func)(void *arg), void *arg)
{
	(void)cpu;
	func(arg);
}

void nvmm_hosted_ipi_broadcast(void (*func)(void *arg), void *arg)
{
	int i;

	for (i = 0; i < nvmm_hosted_ncpus(); i++)
		func(arg);
}

void nvmm_hosted_ipi_kickall(void)
{
}

void nvmm_hosted_cpuset_init(struct nvmm_hosted_cpuset **set)
{
	*set = nvmm_hosted_mem_alloc(sizeof(**set), 1);
}

void nvmm_hosted_cpuset_destroy(struct nvmm_hosted_cpuset *set)
{
	nvmm_hosted_mem_free(set, sizeof(*set));
}

void nvmm_hosted_cpuset_setrunning(struct nvmm_hosted_cpuset *set)
{
	int i;

	for (i = 0; i < nvmm_hosted_ncpus(); i++)
		__atomic_fetch_or(&set->bits[i / 64], 1UL << (i % 64), __ATOMIC_SEQ_CST);
}

/* FPU: what FXSAVE reports (Intel SDM Vol. 1, 10.5.1.2: a MXCSR_MASK of 0 means 0xFFBF). */

unsigned long long nvmm_hosted_xsave_features(void)
{
	return 0;	/* the fake backend keeps the legacy FXSAVE image only */
}

unsigned int nvmm_hosted_fpu_mxcsr_mask(void)
{
	static unsigned char area[512] __attribute__((aligned(16)));
	unsigned int mask;

	__asm__ volatile("fxsave %0" : "=m"(area));
	memcpy(&mask, area + 28, sizeof(mask));
	return mask ? mask : 0xFFBF;
}
