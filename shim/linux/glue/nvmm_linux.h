/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Linux kernel as NVMM's os_* contract sees it.
 *
 * This header is the only meeting point of the two worlds of the Linux port:
 *
 *  - upstream's translation units (compiled with -D_KERNEL against the generated BSD compat
 *    headers and the rendered nvmm_os.h, never against Linux headers) include it through
 *    nvmm_os.h and call the primitives declared here;
 *  - the glue translation unit nvmm_linux.c (Linux headers only) includes it to implement them.
 *
 * So it uses nothing but the C language: builtin types, GCC builtins and inline assembly.  Linux
 * objects (mutexes, read/write semaphores, files) appear only as opaque storage whose size is
 * checked against the real type with BUILD_BUG_ON() in nvmm_linux.c.  Primitives on the VM-entry
 * path (current CPU number, atomics, asserts, cpusets, the invalidation generation) are inline;
 * the rest are ordinary calls into nvmm_linux.c.
 *
 * Selectors follow the x86-64 Linux GDT layout (arch/x86/include/asm/segment.h documents it):
 * kernel code in entry 2, kernel data in entry 3, user data in entry 5.
 */

#ifndef _NVMM_LINUX_H_
#define _NVMM_LINUX_H_

/* BSD segment selector indices, Linux GDT layout (usable from assembly too). */
#define GCODE_SEL		2	/* __KERNEL_CS >> 3 */
#define GDATA_SEL		3	/* __KERNEL_DS >> 3 */
#define GUDATA_SEL		5	/* __USER_DS >> 3 */

#ifndef __ASSEMBLER__

/*
 * Maximum number of CPUs: the kernel's configured limit (kconfig.h is force-included by Kbuild in
 * both worlds).
 */
#define NVMM_LINUX_MAXCPUS	CONFIG_NR_CPUS

/* Opaque storage for Linux lock objects; nvmm_linux.c checks that the real ones fit. */
struct nvmm_linux_mutex {
	unsigned long opaque[12];
};

struct nvmm_linux_rwlock {
	unsigned long opaque[14];
};

/* A CPU, as NVMM names one: os_cpu_t. */
struct nvmm_linux_cpu {
	int number;
};

extern struct nvmm_linux_cpu nvmm_linux_cpus[NVMM_LINUX_MAXCPUS];

/* A set of CPUs (os_cpuset_t): a plain bitmap, updated atomically. */
#define NVMM_LINUX_CPUSET_WORDS	((NVMM_LINUX_MAXCPUS + 63) / 64)

struct nvmm_linux_cpuset {
	unsigned long bits[NVMM_LINUX_CPUSET_WORDS];
};

/*
 * Address spaces.  A vm_map is what os_vmobj_map()/os_vmobj_unmap() act on: the kernel's
 * (os_kernel_map), the calling process's (os_curproc_map, resolved to current->mm at the time of
 * the call), or a guest's, which is embedded in the guest's vmspace and backed by a nested pmap
 * (shim/common/npt).
 */
enum nvmm_linux_map_kind {
	NVMM_LINUX_MAP_KERNEL = 1,
	NVMM_LINUX_MAP_CURPROC = 2,
	NVMM_LINUX_MAP_GUEST = 3,
};

struct pmap;

struct vm_map {
	enum nvmm_linux_map_kind kind;
	struct pmap *pmap;			/* guest maps only */
	const unsigned long long *gen;		/* guest maps: the invalidation generation */
};

struct vmspace {
	struct vm_map vm_map;
};

extern struct vm_map nvmm_linux_kernel_map;
extern struct vm_map nvmm_linux_curproc_map;

/* A memory object (os_vmobj_t): pageable anonymous memory, in nvmm_linux.c. */
struct nvmm_linux_vmobj;

/*
 * The os_* functions upstream declares in nvmm_os.h, with the same types spelled in plain C
 * (vaddr_t, vsize_t and paddr_t are unsigned long on x86-64, voff_t is long, vm_prot_t is int).
 * Upstream's own prototypes redeclare them in the upstream world, so the compiler checks that both
 * agree.  Guest spaces cover the guest-physical range [lo, hi); memory objects are size bytes long.
 */
struct vmspace *os_vmspace_create(unsigned long lo, unsigned long hi);
void os_vmspace_destroy(struct vmspace *vm);
int os_vmspace_fault(struct vmspace *vm, unsigned long gpa, int prot);

struct nvmm_linux_vmobj *os_vmobj_create(long size);
void os_vmobj_ref(struct nvmm_linux_vmobj *obj);
void os_vmobj_rel(struct nvmm_linux_vmobj *obj);

/* Map size bytes of obj from offset off at *va in map (exactly there if fixed, else *va is set). */
int os_vmobj_map(struct vm_map *map, unsigned long *va, unsigned long size,
		 struct nvmm_linux_vmobj *obj, long off, _Bool wired, _Bool fixed,
		 _Bool shared, int prot, int maxprot);
void os_vmobj_unmap(struct vm_map *map, unsigned long start, unsigned long end, _Bool wired);

void *os_pagemem_zalloc(unsigned long size);
void os_pagemem_free(void *ptr, unsigned long size);

unsigned long os_pa_zalloc(void);
void os_pa_free(unsigned long pa);

int os_contigpa_zalloc(unsigned long *pa, unsigned long *va, unsigned long npages);
void os_contigpa_free(unsigned long pa, unsigned long va, unsigned long npages);

/* Locks: sleeping, the vCPU mutex is held across VM entry. */
void nvmm_linux_mtx_init(struct nvmm_linux_mutex *lock);
void nvmm_linux_mtx_destroy(struct nvmm_linux_mutex *lock);
void nvmm_linux_mtx_lock(struct nvmm_linux_mutex *lock);
void nvmm_linux_mtx_unlock(struct nvmm_linux_mutex *lock);
_Bool nvmm_linux_mtx_owned(struct nvmm_linux_mutex *lock);

void nvmm_linux_rwl_init(struct nvmm_linux_rwlock *lock);
void nvmm_linux_rwl_destroy(struct nvmm_linux_rwlock *lock);
void nvmm_linux_rwl_rlock(struct nvmm_linux_rwlock *lock);
void nvmm_linux_rwl_wlock(struct nvmm_linux_rwlock *lock);
void nvmm_linux_rwl_unlock(struct nvmm_linux_rwlock *lock);
_Bool nvmm_linux_rwl_wheld(struct nvmm_linux_rwlock *lock);

/* Memory: sleeping allocations that never fail (callers do not check). */
void *nvmm_linux_mem_alloc(unsigned long size, _Bool zero);
void nvmm_linux_mem_free(void *ptr, unsigned long size);

/*
 * Messages, failures, time, user copies.  The attributes are spelled out: this header uses no
 * other header's macros (tests/test_linux.py compiles it alone).
 */
int nvmm_linux_printf(const char *fmt, ...) __attribute__((__format__(__printf__, 1, 2)));
__attribute__((__noreturn__, __cold__, __format__(__printf__, 1, 2)))
void panic(const char *fmt, ...);
long long nvmm_linux_time_second(void);
int nvmm_linux_copyin(const void *uaddr, void *kaddr, unsigned long len);
int nvmm_linux_copyout(const void *kaddr, void *uaddr, unsigned long len);

/* CPUs, preemption, thread binding, cross-CPU calls. */
struct nvmm_linux_cpu *nvmm_linux_cpu_first(void);
struct nvmm_linux_cpu *nvmm_linux_cpu_next(struct nvmm_linux_cpu *prev);
unsigned long nvmm_linux_curcpu_tss(void);
unsigned long nvmm_linux_curcpu_gdt(void);
unsigned long nvmm_linux_curcpu_idt(void);
unsigned short nvmm_linux_curcpu_tss_sel(void);
void nvmm_linux_preempt_disable(void);
void nvmm_linux_preempt_enable(void);
_Bool nvmm_linux_preempt_disabled(void);
int nvmm_linux_thread_bind(void);
void nvmm_linux_thread_unbind(int bound);	/* what nvmm_linux_thread_bind() returned */
_Bool nvmm_linux_return_needed(void);
_Bool nvmm_linux_guest_enter(void);
void nvmm_linux_ipi_unicast(int cpu, void (*func)(void *arg), void *arg);
void nvmm_linux_ipi_broadcast(void (*func)(void *arg), void *arg);
void nvmm_linux_ipi_kickall(void);
void nvmm_linux_cpuset_init(struct nvmm_linux_cpuset **set);
void nvmm_linux_cpuset_destroy(struct nvmm_linux_cpuset *set);
void nvmm_linux_cpuset_setrunning(struct nvmm_linux_cpuset *set);

/* Nested paging: the format a backend's machine_create asks for. */
void nvmm_linux_pmap_set_ept(struct pmap *pm, _Bool ad_bits);	/* EPT accessed/dirty flags */
void nvmm_linux_pmap_set_npt(struct pmap *pm);
void nvmm_linux_vmspace_own(struct vmspace *vm, struct nvmm_linux_vmobj *obj);
unsigned long nvmm_linux_pmap_root_pa(struct pmap *pm);
void **nvmm_linux_pmap_mach(struct pmap *pm);

/*
 * Host FPU and debug registers around guest execution.  xsave_mask: the XSAVE state components
 * of the guest area, 0 for the legacy FXSAVE image.
 */
void nvmm_linux_fpu_enter(void);
void nvmm_linux_fpu_leave(void);
void nvmm_linux_fpu_save(void *area, unsigned long long xsave_mask);
void nvmm_linux_fpu_restore(const void *area, unsigned long long xsave_mask);
unsigned long long nvmm_linux_xsave_features(void);
unsigned int nvmm_linux_fpu_mxcsr_mask(void);
void nvmm_linux_dbregs_save(unsigned long *drs);
void nvmm_linux_dbregs_restore(const unsigned long *drs);

/*
 * Upstream's entry points for the device glue, in the upstream world (nvmm_linux_bridge.c).  Errors
 * come back as positive Linux errno values.
 */
struct nvmm_owner;

int nvmm_linux_init(void);
void nvmm_linux_fini(void);
const char *nvmm_linux_backend_name(void);
struct nvmm_owner *nvmm_linux_owner_alloc(int pid);
struct nvmm_owner *nvmm_linux_root_owner(void);
void nvmm_linux_owner_free(struct nvmm_owner *owner);
int nvmm_linux_ioctl(struct nvmm_owner *owner, unsigned long cmd, void *data);

/* ------------------------------------------------------------------------------------------ */
/* Inline primitives of the VM-entry path. */

/*
 * The current CPU's number (raw_smp_processor_id(): where Linux keeps it changed in 6.2, from the
 * per-CPU cpu_number to pcpu_hot.cpu_number, so the glue reads it with Linux's own headers).
 */
int nvmm_linux_curcpu_number(void);

#ifdef _KERNEL		/* upstream's world: Linux's own declarations are not visible here */

/*
 * ioctl commands in Linux's encoding (include/uapi/asm-generic/ioctl.h: direction in bits 31:30,
 * write 1 and read 2, size in bits 29:16, type in 15:8, number in 7:0), so that libnvmm built
 * against the C library's <sys/ioctl.h> and the driver agree, and the glue decodes them with
 * _IOC_DIR/_IOC_SIZE.
 */
#define _IOC(dir, type, nr, size)	\
	(((dir) << 30) | ((unsigned int)(size) << 16) | ((type) << 8) | (nr))
#define _IOR(type, nr, t)	_IOC(2U, (type), (nr), sizeof(t))
#define _IOW(type, nr, t)	_IOC(1U, (type), (nr), sizeof(t))
#define _IOWR(type, nr, t)	_IOC(3U, (type), (nr), sizeof(t))


#define nvmm_linux_curcpu()	(&nvmm_linux_cpus[nvmm_linux_curcpu_number()])

/* BSD spellings of kernel services NVMM calls directly. */
#define copyin(uaddr, kaddr, len)	nvmm_linux_copyin(uaddr, kaddr, len)
#define copyout(kaddr, uaddr, len)	nvmm_linux_copyout(kaddr, uaddr, len)
#define time_second			nvmm_linux_time_second()

#endif /* _KERNEL */

static inline _Bool
nvmm_linux_cpuset_isset(const struct nvmm_linux_cpuset *set, int cpu)
{
	return (__atomic_load_n(&set->bits[cpu / 64], __ATOMIC_RELAXED) >> (cpu % 64)) & 1;
}

static inline void
nvmm_linux_cpuset_clear(struct nvmm_linux_cpuset *set, int cpu)
{
	__atomic_fetch_and(&set->bits[cpu / 64], ~(1UL << (cpu % 64)), __ATOMIC_SEQ_CST);
}

/* The guest space's invalidation generation, read with interrupts disabled before VM entry. */
static inline unsigned long long
nvmm_linux_vmspace_gen(const struct vmspace *vm)
{
	return __atomic_load_n(vm->vm_map.gen, __ATOMIC_ACQUIRE);
}

/* Always on, as DragonFly's KKASSERT: a broken invariant in a hypervisor is not survivable. */
#define NVMM_LINUX_ASSERT(e)						\
	do {								\
		if (__builtin_expect(!(e), 0))				\
			panic("nvmm: assertion \"%s\" failed at %s:%d\n", \
			    #e, __FILE__, __LINE__);			\
	} while (0)

#endif /* !__ASSEMBLER__ */

#endif /* _NVMM_LINUX_H_ */
