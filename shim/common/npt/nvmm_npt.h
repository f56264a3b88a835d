/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * nvmm-port: portable nested page tables for NVMM ports, a target-independent nested pmap.
 *
 * A "space" is one guest-physical address space [lo, hi) whose page tables are in the hardware
 * nested format of the host CPU: AMD NPT (ordinary long-mode 4-level tables walked as user
 * accesses) or Intel EPT.  Ranges of memory objects are mapped at guest-physical addresses with a
 * protection; nothing is entered in the tables until npt_fault() populates the page a guest
 * touched.  npt_unmap() clears entries, advances the invalidation generation the backends compare
 * before every VM entry, has the OS interrupt the CPUs running the guest, and only then hands
 * pages back.
 *
 * It implements the guest-memory part of the os_* contract (the porter's spec for guest memory,
 * items 1, 4, 5 and 6: os_vmspace_create/_destroy/_fault/_pdirpa and a DragonFly pm_invgen-style
 * counter); a port's versions of those are thin wrappers around this file.  The OS supplies every
 * allocation, the memory objects, a sleeping lock and the cross-CPU interrupt through struct
 * npt_hooks; the code holds no global state.
 *
 * Wiring in a port (one space per machine):
 *   os_vmspace_create(lo, hi)   npt_create(lo, hi, &hooks, ctx); the backend's machine_create then
 *                               calls npt_set_format() where upstream transforms the pmap (EPT for
 *                               VMX with the CPU's A/D and execute-only support, NPT for SVM)
 *   os_vmspace_pdirpa(vm)       npt_root_pa()
 *   os_vmobj_map(guest space)   npt_map() (it takes the object reference the mapping holds)
 *   os_vmobj_unmap(guest space) npt_unmap()
 *   os_vmspace_fault(vm, gpa)   npt_fault()
 *   os_vmspace_destroy(vm)      npt_destroy()
 *   the backend's generation    npt_generation(), compared before each VM entry
 *   hooks->invalidated          a synchronous IPI to the CPUs in guest mode (os_ipi_kickall)
 *
 * Types: the header needs uint64_t, uint32_t, bool, size_t and NULL.  A kernel target includes its
 * own types header first and defines NPT_OS_TYPES_INCLUDED; otherwise the compiler's freestanding
 * headers are included.
 *
 * Errors are positive errno values.  NPT_E* default to the host's E* macros when they are visible
 * at this point and to the historical Unix numbers otherwise (identical on BSD and Linux); a target
 * with a different errno space defines NPT_E* before including this header.  Errors returned by
 * obj_getpage are passed up unchanged.
 */

#ifndef NVMM_NPT_H
#define NVMM_NPT_H

#ifndef NPT_OS_TYPES_INCLUDED
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#endif

#ifndef NPT_EIO
# ifdef EIO
#  define NPT_EIO	EIO
# else
#  define NPT_EIO	5
# endif
#endif
#ifndef NPT_ENOMEM
# ifdef ENOMEM
#  define NPT_ENOMEM	ENOMEM
# else
#  define NPT_ENOMEM	12
# endif
#endif
#ifndef NPT_EACCES
# ifdef EACCES
#  define NPT_EACCES	EACCES
# else
#  define NPT_EACCES	13
# endif
#endif
#ifndef NPT_EFAULT
# ifdef EFAULT
#  define NPT_EFAULT	EFAULT
# else
#  define NPT_EFAULT	14
# endif
#endif
#ifndef NPT_EBUSY
# ifdef EBUSY
#  define NPT_EBUSY	EBUSY
# else
#  define NPT_EBUSY	16
# endif
#endif
#ifndef NPT_EEXIST
# ifdef EEXIST
#  define NPT_EEXIST	EEXIST
# else
#  define NPT_EEXIST	17
# endif
#endif
#ifndef NPT_EINVAL
# ifdef EINVAL
#  define NPT_EINVAL	EINVAL
# else
#  define NPT_EINVAL	22
# endif
#endif

/* Page size of the nested tables: only 4 KiB leaves are built. */
#define NPT_PAGE_SIZE	4096ULL
#define NPT_PAGE_MASK	(NPT_PAGE_SIZE - 1)

/*
 * Four levels of 512 entries translate 48 bits of guest-physical address; a space's [lo, hi)
 * must lie below this.
 */
#define NPT_GPA_LIMIT	(1ULL << 48)

/* Protections: the same values as the BSD PROT_READ/PROT_WRITE/PROT_EXEC NVMM passes around. */
#define NPT_PROT_READ	0x1
#define NPT_PROT_WRITE	0x2
#define NPT_PROT_EXEC	0x4
#define NPT_PROT_ALL	(NPT_PROT_READ | NPT_PROT_WRITE | NPT_PROT_EXEC)

/**
 * enum npt_format - the hardware format of the tables.
 * @NPT_FORMAT_NPT: AMD SVM nested paging: long-mode entries (AMD APM Vol. 2, 15.25 and 5.3).
 * @NPT_FORMAT_EPT: Intel VMX extended page tables (Intel SDM Vol. 3C, 29.3.2).
 */
enum npt_format {
	NPT_FORMAT_NPT = 0,
	NPT_FORMAT_EPT = 1,
};

/*
 * Flags of npt_set_format(), EPT only (must be 0 for NPT).
 *
 * NPT_EPT_AD:    the backend enables EPT accessed/dirty flags (EPTP bit 6; the backend writes
 *                the EPTP, this code never does).  Every entry is then written with its accessed
 *                flag (bit 8) already set, and writable leaves with their dirty flag (bit 9), so
 *                the processor never has to update them; nothing here reads them back.  Without
 *                the flag bits 8 and 9 are ignored by the processor and are left 0.
 * NPT_EPT_XONLY: the processor supports execute-only EPT translations (IA32_VMX_EPT_VPID_CAP
 *                bit 0).  Without it an execute-only mapping is made readable too, since R=0 W=0
 *                X=1 would be an EPT misconfiguration.
 * NPT_EPT_IPAT:  set "ignore PAT" (bit 6) in leaves: the leaf memory type alone decides.  Without
 *                it the guest's PAT type is combined with the leaf's.
 */
#define NPT_EPT_AD	0x1u
#define NPT_EPT_XONLY	0x2u
#define NPT_EPT_IPAT	0x4u

/* EPT memory types for leaves (Intel SDM Vol. 3C, "EPT and Memory Typing"). */
#define NPT_EPT_MT_UC	0u
#define NPT_EPT_MT_WC	1u
#define NPT_EPT_MT_WT	4u
#define NPT_EPT_MT_WP	5u
#define NPT_EPT_MT_WB	6u

/**
 * struct npt_hooks - what the OS provides.  Every hook gets the @ctx given to npt_create().
 *
 * The hooks are called from process context and may sleep.  All of them except lock/unlock are
 * called with the space's lock held, save the allocations of npt_create() and the final free of
 * npt_destroy(); none may call back into this API for the same space.
 *
 * @mem_alloc:   allocate @size bytes for an internal structure, pointer aligned: the space
 *               itself, a table's bookkeeping (32 bytes, and 4096 for the child pointers of a
 *               non-leaf table) or the mapping array (40 bytes a mapping, grown by doubling from
 *               8 mappings).  May sleep; NULL on failure.  Need not be zeroed.
 * @mem_free:    free what mem_alloc returned; @size is the size it was asked for.
 * @page_zalloc: one zeroed, wired, 4 KiB-aligned page for a page table: return its kernel VA and
 *               store its physical address (below 2^52) in *@pa; NULL on failure.  The tables are
 *               read by the CPU's page walker with write-back caching, so the page must be normal
 *               cacheable memory.
 * @page_free:   free such a page.  Only called once no CPU can walk it (see npt_unmap()).
 * @obj_getpage: find the physical page backing byte @offset (page aligned) of object @obj,
 *               allocating and zero-filling it if needed, take a reference on it that keeps it
 *               resident at that physical address, and store its address in *@pa.  @write says the
 *               page is about to be made writable to the guest (break any copy-on-write).  Returns
 *               0 or a positive errno (passed up by npt_fault()).
 * @obj_putpage: drop the reference obj_getpage took; same @obj and @offset, @pa as returned.
 * @obj_ref:     take a reference on @obj; every mapping of the space holds one.
 * @obj_rel:     drop it.
 * @lock:        acquire the space's lock, a sleeping lock (mutex/rwlock held for write): it
 *               serialises map, unmap, fault, translate and destroy.
 * @unlock:      release it.
 * @invalidated: the generation has just moved because present entries were removed.  Before
 *               returning, the OS must make every CPU that may be executing a vCPU of this space in
 *               guest mode leave guest mode (an IPI it waits for: a VM exit follows any interrupt),
 *               so that its next VM entry reads the new generation and flushes its nested-TLB
 *               translations.  Interrupting all CPUs is correct, only slower.
 */
#ifdef __cplusplus
extern "C" {
#endif

struct npt_hooks {
	void *(*mem_alloc)(void *ctx, size_t size);
	void (*mem_free)(void *ctx, void *ptr, size_t size);
	void *(*page_zalloc)(void *ctx, uint64_t *pa);
	void (*page_free)(void *ctx, void *va, uint64_t pa);
	int (*obj_getpage)(void *ctx, void *obj, uint64_t offset, bool write, uint64_t *pa);
	void (*obj_putpage)(void *ctx, void *obj, uint64_t offset, uint64_t pa);
	void (*obj_ref)(void *ctx, void *obj);
	void (*obj_rel)(void *ctx, void *obj);
	void (*lock)(void *ctx);
	void (*unlock)(void *ctx);
	void (*invalidated)(void *ctx);
};

struct npt_space;

/**
 * npt_create() - create an empty guest-physical space covering [@lo, @hi).
 * @lo, @hi:  page aligned, @lo < @hi <= NPT_GPA_LIMIT.
 * @hooks:    the OS hooks, all non-NULL; copied, so the struct need not outlive the call.
 * @ctx:      passed to every hook.
 *
 * Allocates the root table (PML4) at once, so npt_root_pa() is valid from the start.  The format
 * is NPT until npt_set_format() says otherwise.  The generation starts at 1, so that a vCPU whose
 * acknowledged generation starts at 0 flushes on its first entry: this also removes translations
 * some earlier space with the same root page may have left cached.
 *
 * Return: the space, or NULL if memory ran out or an argument is invalid.
 */
struct npt_space *npt_create(uint64_t lo, uint64_t hi, const struct npt_hooks *hooks, void *ctx);

/**
 * npt_set_format() - choose the entry format.
 * @fmt:         NPT_FORMAT_NPT or NPT_FORMAT_EPT.
 * @flags:       NPT_EPT_* flags (EPT only; must be 0 for NPT).
 * @ept_memtype: EPT leaf memory type (NPT_EPT_MT_*; WB for guest RAM); must be 0 for NPT, whose
 *               leaves use PAT index 0 (PWT=PCD=0), write-back under the host's PAT.
 *
 * Must be called before the first entry is installed: mappings may already exist, but once
 * npt_fault() has started populating the tables the format is fixed.
 *
 * Return: 0; NPT_EBUSY once the tables have been populated; NPT_EINVAL for a bad format, flag or
 * memory type.
 */
int npt_set_format(struct npt_space *space, enum npt_format fmt, unsigned int flags,
		   unsigned int ept_memtype);

/**
 * npt_destroy() - tear the space down.
 *
 * Puts every page entered in the tables (obj_putpage), frees every table (page_free, mem_free),
 * releases every mapping's object reference (obj_rel) and frees the space.  The caller guarantees
 * that no vCPU of the space runs any more and that no other call on it is in progress or follows.
 * invalidated() is not called: nothing runs on the space; stale translations tagged with its root
 * are flushed by the first VM entry of whichever space reuses the root page (see npt_create()).
 */
void npt_destroy(struct npt_space *space);

/**
 * npt_map() - map [@obj_offset, @obj_offset + @size) of @obj at [@gpa, @gpa + @size).
 * @gpa, @size, @obj_offset: page aligned, @size > 0; the range must lie within [lo, hi).
 * @prot: NPT_PROT_* bits, possibly 0 (every access then faults to the caller).  A writable
 *        mapping must be readable: neither format can express write without read (it is an EPT
 *        misconfiguration, and NPT's present bit grants reads).  Execute-only is kept as asked
 *        but is effectively readable on NPT, and on EPT without NPT_EPT_XONLY.
 *
 * Records the mapping and takes a reference on @obj (obj_ref); populates nothing.
 *
 * Return: 0; NPT_EINVAL for bad arguments or a range outside [lo, hi); NPT_EEXIST if the range
 * overlaps an existing mapping; NPT_ENOMEM.
 */
int npt_map(struct npt_space *space, uint64_t gpa, uint64_t size, void *obj, uint64_t obj_offset,
	    int prot);

/**
 * npt_unmap() - remove every mapping, or part of one, inside [@gpa, @end).
 * @gpa, @end: page aligned, @gpa < @end, within [lo, hi).  Holes are allowed.
 *
 * Mappings straddling a bound are trimmed; one containing the whole range is split in two, and the
 * new half takes its own object reference.  Mappings left empty release theirs (obj_rel).
 *
 * Order, which is what makes it safe against CPUs walking the tables concurrently:
 *  1. every present leaf in the range is made not-present with one 64-bit store, and every table
 *     left with no present entry is unlinked from its parent the same way;
 *  2. if step 1 changed any present entry, the generation is advanced (atomic, release order, so
 *     the stores of step 1 are visible to whoever sees the new value) and invalidated() is called,
 *     which returns only once no CPU can still be in guest mode with the old generation;
 *  3. only then are the removed pages handed back (obj_putpage) and the unlinked tables freed.
 * A range in which nothing was ever populated changes no present entry: no generation move, no
 * invalidated().
 *
 * Return: 0; NPT_EINVAL for bad arguments; NPT_ENOMEM if splitting a mapping needed memory that
 * could not be had (nothing was changed then).
 */
int npt_unmap(struct npt_space *space, uint64_t gpa, uint64_t end);

/**
 * npt_fault() - resolve a nested page fault at @gpa for an access @prot.
 * @gpa:  any address in the faulting page.
 * @prot: a non-zero set of NPT_PROT_* bits: the access that faulted.
 *
 * Enters the page in the tables with the full protection of the mapping covering it (so later
 * accesses the mapping allows do not fault again), getting the page with obj_getpage (asked to be
 * writable if the mapping is).  A page already entered is not touched: faulting twice is harmless
 * and holds a single page reference.  May sleep.
 *
 * Return: 0 if the access is now permitted; NPT_EFAULT if @gpa is outside [lo, hi) or no mapping
 * covers it; NPT_EACCES if @prot exceeds the mapping's (effective) protection; NPT_EINVAL for a bad
 * @prot; NPT_ENOMEM; NPT_EIO if obj_getpage returned an unusable address; obj_getpage's error.
 */
int npt_fault(struct npt_space *space, uint64_t gpa, int prot);

/**
 * npt_root_pa() - physical address of the root table (PML4), for the EPTP or the VMCB's nCR3.
 *
 * Page aligned and stable for the life of the space.  Lock free.
 */
uint64_t npt_root_pa(const struct npt_space *space);

/**
 * npt_generation() - the invalidation generation: 1 at creation, advanced by one by every
 * npt_unmap() that removed present entries.
 *
 * Lock free: an atomic 64-bit load (acquire, a plain load on x86-64) that the backend makes with
 * interrupts disabled just before VM entry and compares with the value its vCPU last flushed at.
 */
uint64_t npt_generation(const struct npt_space *space);

/**
 * npt_generation_ptr() - where the generation lives, for a backend that reads it inline.
 *
 * The word is valid for the life of the space and only ever advanced; read it with an atomic
 * 64-bit load with acquire order (what npt_generation() does).
 */
const uint64_t *npt_generation_ptr(const struct npt_space *space);

/**
 * npt_translate() - walk the tables as the hardware would, for tests and debugging.
 * @pa:   if non-NULL, receives the physical address @gpa translates to.
 * @prot: if non-NULL, receives the protection the hardware grants (NPT_PROT_* bits): on NPT a
 *        present leaf is always readable.
 *
 * Return: 0; NPT_EFAULT if no present leaf translates @gpa (or @gpa is outside [lo, hi)); NPT_EIO
 * if a non-leaf entry and the bookkeeping behind it disagree (a bug).
 */
int npt_translate(struct npt_space *space, uint64_t gpa, uint64_t *pa, int *prot);

#ifdef __cplusplus
}
#endif

#endif /* NVMM_NPT_H */
