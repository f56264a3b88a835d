/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Haiku kernel as NVMM's os_* contract sees it.
 *
 * The meeting point of the two worlds of the Haiku port:
 *
 *  - upstream's translation units (compiled with -D_KERNEL against the
 *    generated BSD compat headers and the rendered nvmm_os.h, never against
 *    Haiku's headers) include it through nvmm_os.h and call what it declares;
 *  - the glue (the glue .cpp files, C++ because Haiku's private kernel headers are)
 *    includes it after Haiku's headers and defines those functions with C
 *    linkage.
 *
 * So it is plain C: builtin types, compiler builtins and inline assembly, no
 * Haiku type.  Haiku's lock objects appear as opaque storage whose size the
 * glue checks with static_assert.  The two Haiku kernel functions upstream
 * calls under their own names (panic, dprintf) are declared here with the
 * kernel's prototypes, so both worlds agree on them.
 *
 * Selectors follow Haiku's x86_64 GDT (headers/private/kernel/arch/x86/64/
 * descriptors.h): kernel code in entry 1, kernel data in entry 2, user data
 * in entry 4.
 */

#ifndef _NVMM_HAIKU_H_
#define _NVMM_HAIKU_H_

/* BSD segment selector indices, Haiku's x86_64 GDT (usable from assembly). */
#define GCODE_SEL		1	/* KERNEL_CODE_SEGMENT */
#define GDATA_SEL		2	/* KERNEL_DATA_SEGMENT */
#define GUDATA_SEL		4	/* USER_DATA_SEGMENT */

#ifndef __ASSEMBLER__
#ifndef _ASSEMBLER

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Maximum number of CPUs: Haiku's SMP_MAX_CPUS for x86_64 (the bios_ia32
 * and efi platform headers); the glue checks that they agree.
 */
#define NVMM_HAIKU_MAXCPUS	64

/* C's _Bool, C++'s bool: the same type in both worlds' ABI. */
#ifdef __cplusplus
typedef bool nvmm_haiku_bool;
#else
typedef _Bool nvmm_haiku_bool;
#endif

/*
 * BSD error numbers (NetBSD's, as the compat layer defines them) the glue
 * returns to upstream's code; the bridge checks them against the compat
 * layer's.
 */
#define NVMM_HAIKU_EPERM	1
#define NVMM_HAIKU_ENOENT	2
#define NVMM_HAIKU_EIO		5
#define NVMM_HAIKU_ENOMEM	12
#define NVMM_HAIKU_EACCES	13
#define NVMM_HAIKU_EFAULT	14
#define NVMM_HAIKU_EBUSY	16
#define NVMM_HAIKU_EEXIST	17
#define NVMM_HAIKU_EINVAL	22
#define NVMM_HAIKU_EAGAIN	35
#define NVMM_HAIKU_ENOBUFS	55
#define NVMM_HAIKU_EPROGMISMATCH 75
#define NVMM_HAIKU_ENOTSUP	86

/* Opaque storage for Haiku's mutex and rw_lock plus their holder thread. */
struct nvmm_haiku_mutex {
	unsigned long opaque[6];
};

struct nvmm_haiku_rwlock {
	unsigned long opaque[8];
};

/* A CPU, as NVMM names one: os_cpu_t. */
struct nvmm_haiku_cpu {
	int number;
};

extern struct nvmm_haiku_cpu nvmm_haiku_cpus[NVMM_HAIKU_MAXCPUS];

/* A set of CPUs (os_cpuset_t): a plain bitmap, updated atomically. */
#define NVMM_HAIKU_CPUSET_WORDS	((NVMM_HAIKU_MAXCPUS + 63) / 64)

struct nvmm_haiku_cpuset {
	unsigned long bits[NVMM_HAIKU_CPUSET_WORDS];
};

/*
 * Address spaces.  A vm_map is what os_vmobj_map()/os_vmobj_unmap() act on:
 * the kernel's (os_kernel_map), the calling team's (os_curproc_map, resolved
 * at the time of the call), or a guest's, embedded in the guest's vmspace and
 * backed by a nested pmap (shim/common/npt).
 */
enum nvmm_haiku_map_kind {
	NVMM_HAIKU_MAP_KERNEL = 1,
	NVMM_HAIKU_MAP_CURPROC = 2,
	NVMM_HAIKU_MAP_GUEST = 3
};

struct pmap;

struct vm_map {
	enum nvmm_haiku_map_kind kind;
	struct pmap *pmap;			/* guest maps only */
	const unsigned long long *gen;		/* guest maps: the generation */
};

struct vmspace {
	struct vm_map vm_map;
};

extern struct vm_map nvmm_haiku_kernel_map;
extern struct vm_map nvmm_haiku_curproc_map;

/* A memory object (os_vmobj_t): a kernel area's cache, in memory.cpp. */
struct nvmm_haiku_vmobj;

/*
 * The os_* functions upstream declares in nvmm_os.h, with the same types in
 * plain C (vaddr_t, vsize_t and paddr_t are unsigned long on x86_64, voff_t is
 * long, vm_prot_t is int).  Upstream's prototypes redeclare them in the
 * upstream world, so the compiler checks that both agree.  Errors are
 * positive BSD numbers.
 */
struct vmspace *os_vmspace_create(unsigned long lo, unsigned long hi);
void os_vmspace_destroy(struct vmspace *vm);
int os_vmspace_fault(struct vmspace *vm, unsigned long gpa, int prot);

struct nvmm_haiku_vmobj *os_vmobj_create(long size);
void os_vmobj_ref(struct nvmm_haiku_vmobj *obj);
void os_vmobj_rel(struct nvmm_haiku_vmobj *obj);
int os_vmobj_map(struct vm_map *map, unsigned long *va, unsigned long size,
	struct nvmm_haiku_vmobj *obj, long off, nvmm_haiku_bool wired,
	nvmm_haiku_bool fixed, nvmm_haiku_bool shared, int prot, int maxprot);
void os_vmobj_unmap(struct vm_map *map, unsigned long start,
	unsigned long end, nvmm_haiku_bool wired);

void *os_pagemem_zalloc(unsigned long size);
void os_pagemem_free(void *ptr, unsigned long size);
unsigned long os_pa_zalloc(void);
void os_pa_free(unsigned long pa);
int os_contigpa_zalloc(unsigned long *pa, unsigned long *va,
	unsigned long npages);
void os_contigpa_free(unsigned long pa, unsigned long va,
	unsigned long npages);

/* Locks: sleeping; the vCPU mutex is held across VM entry. */
void nvmm_haiku_mtx_init(struct nvmm_haiku_mutex *lock);
void nvmm_haiku_mtx_destroy(struct nvmm_haiku_mutex *lock);
void nvmm_haiku_mtx_lock(struct nvmm_haiku_mutex *lock);
void nvmm_haiku_mtx_unlock(struct nvmm_haiku_mutex *lock);
nvmm_haiku_bool nvmm_haiku_mtx_owned(struct nvmm_haiku_mutex *lock);
void nvmm_haiku_rwl_init(struct nvmm_haiku_rwlock *lock);
void nvmm_haiku_rwl_destroy(struct nvmm_haiku_rwlock *lock);
void nvmm_haiku_rwl_rlock(struct nvmm_haiku_rwlock *lock);
void nvmm_haiku_rwl_wlock(struct nvmm_haiku_rwlock *lock);
void nvmm_haiku_rwl_unlock(struct nvmm_haiku_rwlock *lock);
nvmm_haiku_bool nvmm_haiku_rwl_wheld(struct nvmm_haiku_rwlock *lock);

/* Memory: sleeping allocations that never fail (callers do not check). */
void *nvmm_haiku_mem_alloc(unsigned long size, nvmm_haiku_bool zero);
void nvmm_haiku_mem_free(void *ptr, unsigned long size);

/* The kernel's own (KernelExport.h), under the names upstream uses. */
void dprintf(const char *fmt, ...) __attribute__((__format__(__printf__, 1, 2)));
void panic(const char *fmt, ...) __attribute__((__format__(__printf__, 1, 2)));

long long nvmm_haiku_time_second(void);
int nvmm_haiku_copyin(const void *uaddr, void *kaddr, unsigned long len);
int nvmm_haiku_copyout(const void *kaddr, void *uaddr, unsigned long len);

/* CPUs, preemption, thread binding, cross-CPU calls. */
int nvmm_haiku_ncpus(void);
int nvmm_haiku_curcpu_number(void);
unsigned long nvmm_haiku_curcpu_tss(void);
unsigned long nvmm_haiku_curcpu_gdt(void);
unsigned long nvmm_haiku_curcpu_idt(void);
unsigned short nvmm_haiku_curcpu_tss_sel(void);
void nvmm_haiku_preempt_disable(void);
void nvmm_haiku_preempt_enable(void);
nvmm_haiku_bool nvmm_haiku_preempt_disabled(void);
int nvmm_haiku_thread_bind(void);
void nvmm_haiku_thread_unbind(int bound);
nvmm_haiku_bool nvmm_haiku_return_needed(void);
nvmm_haiku_bool nvmm_haiku_guest_enter(void);
void nvmm_haiku_ipi_unicast(int cpu, void (*func)(void *, int), void *arg);
void nvmm_haiku_ipi_broadcast(void (*func)(void *, int), void *arg);
void nvmm_haiku_ipi_kickall(void);
void nvmm_haiku_cpuset_init(struct nvmm_haiku_cpuset **set);
void nvmm_haiku_cpuset_destroy(struct nvmm_haiku_cpuset *set);
void nvmm_haiku_cpuset_setrunning(struct nvmm_haiku_cpuset *set);

/* Nested paging: the format a backend's machine_create asks for. */
void nvmm_haiku_pmap_set_ept(struct pmap *pm, nvmm_haiku_bool ad_bits);
void nvmm_haiku_pmap_set_npt(struct pmap *pm);
void nvmm_haiku_vmspace_own(struct vmspace *vm, struct nvmm_haiku_vmobj *obj);
unsigned long nvmm_haiku_pmap_root_pa(struct pmap *pm);
void **nvmm_haiku_pmap_mach(struct pmap *pm);

/*
 * Host FPU around guest execution (interrupts are off
 * between fpu_enter and fpu_leave).  xsave_mask: the XSAVE state components
 * of the guest area, 0 for the legacy FXSAVE image.
 */
void nvmm_haiku_fpu_enter(void);
void nvmm_haiku_fpu_leave(void);
void nvmm_haiku_fpu_save(void *area, unsigned long long xsave_mask);
void nvmm_haiku_fpu_restore(const void *area, unsigned long long xsave_mask);
unsigned long long nvmm_haiku_xsave_features(void);
unsigned int nvmm_haiku_fpu_mxcsr_mask(void);

/*
 * Upstream's entry points for the device glue, in the upstream world
 * (nvmm_haiku_bridge.c).  Errors come back as positive BSD numbers.
 */
struct nvmm_owner;

int nvmm_haiku_init(void);
void nvmm_haiku_fini(void);
nvmm_haiku_bool nvmm_haiku_ident(void);
const char *nvmm_haiku_backend_name(void);
struct nvmm_owner *nvmm_haiku_owner_alloc(int pid);
struct nvmm_owner *nvmm_haiku_root_owner(void);
void nvmm_haiku_owner_free(struct nvmm_owner *owner);
int nvmm_haiku_ioctl(struct nvmm_owner *owner, unsigned long cmd, void *data);

/* ------------------------------------------------------------------------ */
/* Inline helpers of the VM-entry path. */

static inline nvmm_haiku_bool
nvmm_haiku_cpuset_isset(const struct nvmm_haiku_cpuset *set, int cpu)
{
	return (__atomic_load_n(&set->bits[cpu / 64], __ATOMIC_RELAXED)
		>> (cpu % 64)) & 1;
}

static inline void
nvmm_haiku_cpuset_clear(struct nvmm_haiku_cpuset *set, int cpu)
{
	__atomic_fetch_and(&set->bits[cpu / 64], ~(1UL << (cpu % 64)),
		__ATOMIC_SEQ_CST);
}

/* The guest space's invalidation generation, read before VM entry. */
static inline unsigned long long
nvmm_haiku_vmspace_gen(const struct vmspace *vm)
{
	return __atomic_load_n(vm->vm_map.gen, __ATOMIC_ACQUIRE);
}

#ifdef _KERNEL		/* upstream's world only */

#define nvmm_haiku_curcpu()	(&nvmm_haiku_cpus[nvmm_haiku_curcpu_number()])

/* BSD spellings of kernel services NVMM calls directly. */
#define copyin(uaddr, kaddr, len)	nvmm_haiku_copyin(uaddr, kaddr, len)
#define copyout(kaddr, uaddr, len)	nvmm_haiku_copyout(kaddr, uaddr, len)
#define time_second			nvmm_haiku_time_second()

/* Always on: a broken invariant in a hypervisor is not survivable. */
#define NVMM_HAIKU_ASSERT(e)						\
	do {								\
		if (__builtin_expect(!(e), 0))				\
			panic("nvmm: assertion \"%s\" failed at %s:%d\n", \
			    #e, __FILE__, __LINE__);			\
	} while (0)

#endif /* _KERNEL */

#ifdef __cplusplus
}
#endif

#endif /* !_ASSEMBLER */
#endif /* !__ASSEMBLER__ */

#endif /* _NVMM_HAIKU_H_ */
