/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * An ordinary process as NVMM's os_* contract sees it: the hosted target.
 *
 * The hosted target runs upstream's frontend (driver/nvmm.c) in a user process, to test and fuzz
 * it with AddressSanitizer and UBSan, where no kernel and no virtualization hardware is needed.
 * The process plays the kernel: its threads are the kernel's threads, malloc() its allocator,
 * pthread locks its locks, memfd memory objects mapped with mmap() its memory objects.  The
 * hardware backends are not built: a fake backend of ours (nvmm_hosted_backend.c) sits behind
 * NVMM's backend interface and returns the VM exits a test or a fuzzer scripts, or those of a small
 * interpreter for the guest code the tests run (nvmm_hosted_cpu.c).  libnvmm reaches the frontend
 * through an in-process device (nvmm_hosted_open/_ioctl, glue/device.c).
 *
 * Two worlds, as in the kernel targets: upstream's translation units and the port's bridge
 * (compiled with -D_KERNEL against the generated BSD compat headers and the rendered nvmm_os.h)
 * include this header through nvmm_os.h; the glue translation unit nvmm_hosted.c (the C library's
 * headers only) includes it to implement it.  So it uses nothing but the C language.
 */

#ifndef _NVMM_HOSTED_H_
#define _NVMM_HOSTED_H_

/*
 * BSD segment selector indices, the host's (Linux x86-64) GDT layout.  Only the hardware backends
 * use them, and the hosted build does not compile those.
 */
#define GCODE_SEL		2
#define GDATA_SEL		3
#define GUDATA_SEL		5

#ifndef __ASSEMBLER__

/* "CPUs": the process may run on any of the host's; NVMM's tables are sized for this many. */
#define NVMM_HOSTED_MAXCPUS	64

/* Lock storage; nvmm_hosted.c checks that the pthread objects fit. */
struct nvmm_hosted_mutex {
	unsigned long opaque[6];	/* pthread_mutex_t (40 bytes) */
	void *owner;			/* the thread holding it, for os_mtx_owned() */
};

struct nvmm_hosted_rwlock {
	unsigned long opaque[7];	/* pthread_rwlock_t (56 bytes) */
	void *writer;			/* the thread holding it for writing, for os_rwl_wheld() */
};

/* A CPU, as NVMM names one: os_cpu_t. */
struct nvmm_hosted_cpu {
	int number;
};

extern struct nvmm_hosted_cpu nvmm_hosted_cpus[NVMM_HOSTED_MAXCPUS];

/* A set of CPUs (os_cpuset_t): a bitmap, updated atomically. */
struct nvmm_hosted_cpuset {
	unsigned long bits[NVMM_HOSTED_MAXCPUS / 64];
};

/*
 * Address spaces: the kernel's (os_kernel_map: anywhere in the process), the calling process's
 * (os_curproc_map: the same process, at the addresses libnvmm's caller chose), or a guest's, which
 * is embedded in the guest's vmspace: a table of guest-physical ranges onto memory objects, and
 * the pages the fake backend has faulted in (its "nested page table").
 */
enum nvmm_hosted_map_kind {
	NVMM_HOSTED_MAP_KERNEL = 1,
	NVMM_HOSTED_MAP_CURPROC = 2,
	NVMM_HOSTED_MAP_GUEST = 3,
};

struct pmap;

struct vm_map {
	enum nvmm_hosted_map_kind kind;
	struct pmap *pmap;			/* guest maps only */
};

struct vmspace {
	struct vm_map vm_map;
};

extern struct vm_map nvmm_hosted_kernel_map;
extern struct vm_map nvmm_hosted_curproc_map;

/* A memory object (os_vmobj_t): a memfd, in nvmm_hosted.c. */
struct nvmm_hosted_vmobj;

/*
 * The os_* functions upstream declares in nvmm_os.h, spelled in plain C (vaddr_t, vsize_t and
 * paddr_t are unsigned long on x86-64, voff_t is long, vm_prot_t is int).  Upstream's prototypes
 * redeclare them in the upstream world, so the compiler checks that both agree.
 */
struct vmspace *os_vmspace_create(unsigned long lo, unsigned long hi);
void os_vmspace_destroy(struct vmspace *vm);
int os_vmspace_fault(struct vmspace *vm, unsigned long gpa, int prot);

struct nvmm_hosted_vmobj *os_vmobj_create(long size);
void os_vmobj_ref(struct nvmm_hosted_vmobj *obj);
void os_vmobj_rel(struct nvmm_hosted_vmobj *obj);

/* Map size bytes of obj from offset off at *va in map (exactly there if fixed, else *va is set). */
int os_vmobj_map(struct vm_map *map, unsigned long *va, unsigned long size,
		 struct nvmm_hosted_vmobj *obj, long off, _Bool wired, _Bool fixed,
		 _Bool shared, int prot, int maxprot);
void os_vmobj_unmap(struct vm_map *map, unsigned long start, unsigned long end, _Bool wired);

void *os_pagemem_zalloc(unsigned long size);
void os_pagemem_free(void *ptr, unsigned long size);

unsigned long os_pa_zalloc(void);
void os_pa_free(unsigned long pa);

int os_contigpa_zalloc(unsigned long *pa, unsigned long *va, unsigned long npages);
void os_contigpa_free(unsigned long pa, unsigned long va, unsigned long npages);

/* Locks. */
void nvmm_hosted_mtx_init(struct nvmm_hosted_mutex *lock);
void nvmm_hosted_mtx_destroy(struct nvmm_hosted_mutex *lock);
void nvmm_hosted_mtx_lock(struct nvmm_hosted_mutex *lock);
void nvmm_hosted_mtx_unlock(struct nvmm_hosted_mutex *lock);
_Bool nvmm_hosted_mtx_owned(struct nvmm_hosted_mutex *lock);

void nvmm_hosted_rwl_init(struct nvmm_hosted_rwlock *lock);
void nvmm_hosted_rwl_destroy(struct nvmm_hosted_rwlock *lock);
void nvmm_hosted_rwl_rlock(struct nvmm_hosted_rwlock *lock);
void nvmm_hosted_rwl_wlock(struct nvmm_hosted_rwlock *lock);
void nvmm_hosted_rwl_unlock(struct nvmm_hosted_rwlock *lock);
_Bool nvmm_hosted_rwl_wheld(struct nvmm_hosted_rwlock *lock);

/* Memory: allocations that never fail (callers do not check); the size freed is checked. */
void *nvmm_hosted_mem_alloc(unsigned long size, _Bool zero);
void nvmm_hosted_mem_free(void *ptr, unsigned long size);

/* Messages, failures, time, user copies (EFAULT for an address the process cannot read/write). */
int nvmm_hosted_printf(const char *fmt, ...) __attribute__((__format__(__printf__, 1, 2)));
__attribute__((__noreturn__, __cold__, __format__(__printf__, 1, 2)))
void panic(const char *fmt, ...);
long long nvmm_hosted_time_second(void);
int nvmm_hosted_copyin(const void *uaddr, void *kaddr, unsigned long len);
int nvmm_hosted_copyout(const void *kaddr, void *uaddr, unsigned long len);

/* CPUs, preemption, thread binding, cross-CPU calls (a process has no IPIs: calls run here). */
int nvmm_hosted_ncpus(void);
int nvmm_hosted_curcpu_number(void);
void nvmm_hosted_preempt_disable(void);
void nvmm_hosted_preempt_enable(void);
_Bool nvmm_hosted_preempt_disabled(void);
int nvmm_hosted_thread_bind(void);
void nvmm_hosted_thread_unbind(int bound);
_Bool nvmm_hosted_return_needed(void);
void nvmm_hosted_ipi_unicast(int cpu, void (*func)(void *arg), void *arg);
void nvmm_hosted_ipi_broadcast(void (*func)(void *arg), void *arg);
void nvmm_hosted_ipi_kickall(void);
void nvmm_hosted_cpuset_init(struct nvmm_hosted_cpuset **set);
void nvmm_hosted_cpuset_destroy(struct nvmm_hosted_cpuset *set);
void nvmm_hosted_cpuset_setrunning(struct nvmm_hosted_cpuset *set);

/* Guest memory as the fake backend sees it. */
void nvmm_hosted_vmspace_own(struct vmspace *vm, struct nvmm_hosted_vmobj *obj);
/*
 * The host address of guest-physical gpa for an access of prot (PROT_* bits), valid up to the end
 * of its page; NULL when no page is entered there with that permission (a nested page fault).
 */
void *nvmm_hosted_gpa_page(struct vmspace *vm, unsigned long gpa, int prot);
void **nvmm_hosted_pmap_mach(struct pmap *pm);

/* Host FPU: a process's FPU state is its own; the values a backend would report. */
unsigned long long nvmm_hosted_xsave_features(void);
unsigned int nvmm_hosted_fpu_mxcsr_mask(void);

/*
 * Upstream's entry points for the device glue, in the upstream world (nvmm_hosted_bridge.c).
 * Errors come back as positive Linux errno values.
 */
struct nvmm_owner;

int nvmm_hosted_init(void);
void nvmm_hosted_fini(void);
const char *nvmm_hosted_backend_name(void);
struct nvmm_owner *nvmm_hosted_owner_alloc(int pid);
struct nvmm_owner *nvmm_hosted_root_owner(void);
void nvmm_hosted_owner_free(struct nvmm_owner *owner);
void nvmm_hosted_kill_root_machines(void);
int nvmm_hosted_kernel_ioctl(struct nvmm_owner *owner, unsigned long cmd, void *data);

#ifdef _KERNEL		/* upstream's world: the C library's declarations are not visible here */

/*
 * ioctl commands in Linux's encoding (asm-generic/ioctl.h: direction in bits 31:30, write 1 and
 * read 2, size in bits 29:16, type in 15:8, number in 7:0), so that libnvmm built against the C
 * library's <sys/ioctl.h> and the frontend agree.
 */
#define _IOC(dir, type, nr, size)	\
	(((dir) << 30) | ((unsigned int)(size) << 16) | ((type) << 8) | (nr))
#define _IOR(type, nr, t)	_IOC(2U, (type), (nr), sizeof(t))
#define _IOW(type, nr, t)	_IOC(1U, (type), (nr), sizeof(t))
#define _IOWR(type, nr, t)	_IOC(3U, (type), (nr), sizeof(t))

#define nvmm_hosted_curcpu()	(&nvmm_hosted_cpus[nvmm_hosted_curcpu_number()])

/* BSD spellings of kernel services NVMM calls directly. */
#define copyin(uaddr, kaddr, len)	nvmm_hosted_copyin(uaddr, kaddr, len)
#define copyout(kaddr, uaddr, len)	nvmm_hosted_copyout(kaddr, uaddr, len)
#define time_second			nvmm_hosted_time_second()

#endif /* _KERNEL */

static inline _Bool
nvmm_hosted_cpuset_isset(const struct nvmm_hosted_cpuset *set, int cpu)
{
	return (__atomic_load_n(&set->bits[cpu / 64], __ATOMIC_RELAXED) >> (cpu % 64)) & 1;
}

static inline void
nvmm_hosted_cpuset_clear(struct nvmm_hosted_cpuset *set, int cpu)
{
	__atomic_fetch_and(&set->bits[cpu / 64], ~(1UL << (cpu % 64)), __ATOMIC_SEQ_CST);
}

/* Always on: a broken invariant is what the hosted target is there to find. */
#define NVMM_HOSTED_ASSERT(e)						\
	do {								\
		if (__builtin_expect(!(e), 0))				\
			panic("nvmm: assertion \"%s\" failed at %s:%d\n", \
			    #e, __FILE__, __LINE__);			\
	} while (0)

#endif /* !__ASSEMBLER__ */

#endif /* !_NVMM_HOSTED_H_ */
