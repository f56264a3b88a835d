// SPDX-License-Identifier: BSD-2-Clause
/*
 * Memory for NVMM on Haiku: kernel pages for the backends, memory objects and
 * guest address spaces.
 *
 * Pages.  os_pagemem_zalloc and os_contigpa_zalloc are kernel areas
 * (B_FULL_LOCK, B_CONTIGUOUS: wired, write-back, the physical address from
 * get_memory_map()).  Single physical pages (os_pa_zalloc, the nested page
 * tables) come from the page allocator, wired and cleared, and are reached
 * through the physical map x86_64 Haiku keeps of all RAM at KERNEL_PMAP_BASE
 * (arch_kernel.h), which needs no mapping of its own; one area per page
 * table would cost an area, a cache and a kernel mapping each.
 *
 * Memory objects (os_vmobj_t).  One anonymous kernel area (B_NO_LOCK: its
 * memory is reserved, its pages are allocated when first touched) whose
 * cache every view shares:
 *  - the kernel view is the area itself at the object's offset, its pages
 *    locked with lock_memory_etc() while the view is wired;
 *  - the calling team's view is a new area of the team mapping the same
 *    cache at the object's offset (vm_map_cache(), as vm_clone_area() does
 *    for a whole area; a clone cannot map part of an area, and a vCPU's comm
 *    page is one page of its machine's object), shared (B_SHARED_AREA, so a
 *    fork shares rather than copies it) and, when NVMM asks for a fixed
 *    address, replacing what the team had there (unmapped first as munmap()
 *    does it: waiting for wired ranges, refusing kernel areas).  The view is
 *    a kernel area (B_KERNEL_AREA): the team can use it but neither resize,
 *    cut nor delete it, since resizing one area of a cache resizes all of
 *    them, the kernel view included.  The object records its team views;
 *    they go when NVMM unmaps them, else when the object is released (a
 *    comm page, which libnvmm's munmap() cannot remove, lives as long as
 *    its machine);
 *  - the guest view is the nested pmap of shim/common/npt, which locks the
 *    page a guest touches (lock_memory_etc, get_memory_map_etc) for as long
 *    as it is entered in the tables.
 * Unmapping from a team removes only the views recorded for that team: the
 * team NVMM runs in when a machine dies (a close from another team that
 * inherited the file) may have anything at those addresses.
 *
 * Guest address spaces (os_vmspace_t) are a struct pmap: the nested pmap,
 * its lock and the vm_map NVMM maps objects into.  Removing guest mappings
 * advances the pmap's generation, which the backends compare before every
 * VM entry, and interrupts every CPU (call_all_cpus_sync) so that a vCPU in
 * guest mode exits and flushes before the pages go back.
 */

#include <stdlib.h>
#include <string.h>

#include <KernelExport.h>
#include <OS.h>

#include <arch/x86/arch_cpu.h>
#include <kernel.h>
#include <lock.h>
#include <smp.h>
#include <team.h>
#include <util/AutoLock.h>
#include <vm/vm.h>
#include <vm/vm_page.h>
#include <vm/vm_priv.h>
#include <vm/VMAddressSpace.h>
#include <vm/VMArea.h>
#include <vm/VMCache.h>

#include "nvmm_haiku.h"
#include "nvmm_haiku_glue.h"

// The nested pmap's errors are BSD numbers, as upstream's.
#define NPT_OS_TYPES_INCLUDED
#define NPT_EIO		NVMM_HAIKU_EIO
#define NPT_ENOMEM	NVMM_HAIKU_ENOMEM
#define NPT_EACCES	NVMM_HAIKU_EACCES
#define NPT_EFAULT	NVMM_HAIKU_EFAULT
#define NPT_EBUSY	NVMM_HAIKU_EBUSY
#define NPT_EEXIST	NVMM_HAIKU_EEXIST
#define NPT_EINVAL	NVMM_HAIKU_EINVAL
#include "nvmm_npt.h"


// BSD protections NVMM passes (PROT_READ, PROT_WRITE, PROT_EXEC).
static const int kProtRead = 0x1;
static const int kProtWrite = 0x2;
static const int kProtExec = 0x4;

// Intel SDM Vol. 3D, A.10: IA32_VMX_EPT_VPID_CAP, bit 0 execute-only EPT.
static const uint32 kMsrVmxEptVpidCap = 0x48c;
static const uint64 kEptCapExecuteOnly = 1;


struct team_view {
	team_view*			next;
	team_id				team;
	area_id				area;
	addr_t				base;
	size_t				size;
};

struct nvmm_haiku_vmobj {
	nvmm_haiku_vmobj*	next;		// in sObjects
	int32				refs;
	area_id				area;		// the kernel view
	addr_t				base;
	size_t				size;
	VMCache*			cache;		// the area's, referenced
	team_view*			views;		// in teams, under sObjectsLock
};

struct pmap {
	struct vmspace		vmspace;
	npt_space*			npt;
	mutex				lock;		// the nested pmap's (npt_hooks.lock)
	void*				mach;		// os_pmap_mach()
	nvmm_haiku_vmobj*	owned;		// released with the vmspace
};

extern "C" {
struct vm_map nvmm_haiku_kernel_map = { NVMM_HAIKU_MAP_KERNEL, NULL, NULL };
struct vm_map nvmm_haiku_curproc_map = { NVMM_HAIKU_MAP_CURPROC, NULL, NULL };
}

// Every memory object, to find the one a kernel or team view belongs to.
static mutex sObjectsLock = MUTEX_INITIALIZER("nvmm objects");
static nvmm_haiku_vmobj* sObjects;


static inline size_t
round_to_pages(size_t size)
{
	return (size + B_PAGE_SIZE - 1) & ~(size_t)(B_PAGE_SIZE - 1);
}


static inline bool
page_aligned(uint64 value)
{
	return (value & (B_PAGE_SIZE - 1)) == 0;
}


static int
bsd_error(status_t status)
{
	switch (status) {
		case B_OK:
			return 0;
		case B_NO_MEMORY:
			return NVMM_HAIKU_ENOMEM;
		case B_BAD_ADDRESS:
			return NVMM_HAIKU_EFAULT;
		case B_NOT_ALLOWED:
		case B_PERMISSION_DENIED:
			return NVMM_HAIKU_EACCES;
		case B_BUSY:
			return NVMM_HAIKU_EBUSY;
		default:
			return NVMM_HAIKU_EINVAL;
	}
}


// #pragma mark - kernel pages


extern "C" void*
os_pagemem_zalloc(unsigned long size)
{
	void* address;

	size = round_to_pages(size);
	while (create_area("nvmm pagemem", &address, B_ANY_KERNEL_ADDRESS, size,
			B_FULL_LOCK, kKernelReadWrite) < 0) {
		snooze(10000);
	}
	memset(address, 0, size);
	return address;
}


extern "C" void
os_pagemem_free(void* ptr, unsigned long size)
{
	delete_area(area_for(ptr));
}


/*!	One wired, cleared physical page; NULL (no wait) when none is left
	and \a wait is false.
*/
static vm_page*
allocate_page(bool wait)
{
	vm_page_reservation reserved;

	if (wait)
		vm_page_reserve_pages(&reserved, 1, VM_PRIORITY_SYSTEM);
	else if (!vm_page_try_reserve_pages(&reserved, 1, VM_PRIORITY_SYSTEM))
		return NULL;
	vm_page* tablePage = vm_page_allocate_page(&reserved,
		PAGE_STATE_WIRED | VM_PAGE_ALLOC_CLEAR);
	vm_page_unreserve_pages(&reserved);
	DEBUG_PAGE_ACCESS_END(tablePage);
	return tablePage;
}


static void
free_page(phys_addr_t pa)
{
	vm_page* page = vm_lookup_page(pa / B_PAGE_SIZE);

	DEBUG_PAGE_ACCESS_START(page);
	vm_page_free_etc(NULL, page, NULL);
}


/*!	One zeroed page, by physical address (the SVM host save areas).  NVMM
	does not check: this waits for a page.
*/
extern "C" unsigned long
os_pa_zalloc(void)
{
	return allocate_page(true)->physical_page_number * B_PAGE_SIZE;
}


extern "C" void
os_pa_free(unsigned long pa)
{
	free_page(pa);
}


/*!	Physically contiguous, zeroed, write-back pages (VMCS, VMCB, bitmaps). */
extern "C" int
os_contigpa_zalloc(unsigned long* pa, unsigned long* va, unsigned long npages)
{
	size_t size = npages * B_PAGE_SIZE;
	void* address;

	area_id area = create_area("nvmm contig", &address, B_ANY_KERNEL_ADDRESS,
		size, B_CONTIGUOUS, kKernelReadWrite);
	if (area < 0)
		return NVMM_HAIKU_ENOMEM;

	physical_entry entry;
	if (get_memory_map(address, B_PAGE_SIZE, &entry, 1) < B_OK) {
		delete_area(area);
		return NVMM_HAIKU_ENOMEM;
	}
	memset(address, 0, size);
	*va = (addr_t)address;
	*pa = entry.address;
	return 0;
}


extern "C" void
os_contigpa_free(unsigned long pa, unsigned long va, unsigned long npages)
{
	delete_area(area_for((void*)va));
}


// #pragma mark - memory objects


extern "C" nvmm_haiku_vmobj*
os_vmobj_create(long size)
{
	if (size <= 0 || !page_aligned(size))
		return NULL;

	nvmm_haiku_vmobj* obj = (nvmm_haiku_vmobj*)calloc(1, sizeof(*obj));
	if (obj == NULL)
		return NULL;

	void* address;
	obj->area = create_area("nvmm memory", &address, B_ANY_KERNEL_ADDRESS,
		size, B_NO_LOCK, kKernelReadWrite);
	if (obj->area < 0) {
		free(obj);
		return NULL;
	}
	obj->base = (addr_t)address;
	obj->size = size;
	obj->refs = 1;

	VMArea* area = VMAreas::Lookup(obj->area);
	obj->cache = vm_area_get_locked_cache(area);
	obj->cache->AcquireRefLocked();
	vm_area_put_locked_cache(obj->cache);

	MutexLocker locker(sObjectsLock);
	obj->next = sObjects;
	sObjects = obj;
	return obj;
}


extern "C" void
os_vmobj_ref(nvmm_haiku_vmobj* obj)
{
	atomic_add(&obj->refs, 1);
}


extern "C" void
os_vmobj_rel(nvmm_haiku_vmobj* obj)
{
	if (obj == NULL || atomic_add(&obj->refs, -1) != 1)
		return;

	team_view* views;
	{
		MutexLocker locker(sObjectsLock);
		for (nvmm_haiku_vmobj** link = &sObjects; *link != NULL;
				link = &(*link)->next) {
			if (*link == obj) {
				*link = obj->next;
				break;
			}
		}
		views = obj->views;
		obj->views = NULL;
	}

	// Views NVMM did not unmap (comm pages); gone already if their team is.
	while (views != NULL) {
		team_view* view = views;
		views = view->next;
		vm_delete_area(view->team, view->area, true);
		free(view);
	}

	delete_area(obj->area);
	obj->cache->ReleaseRef();
	free(obj);
}


static nvmm_haiku_vmobj*
object_at(addr_t address)
{
	MutexLocker locker(sObjectsLock);
	for (nvmm_haiku_vmobj* obj = sObjects; obj != NULL; obj = obj->next) {
		if (address >= obj->base && address - obj->base < obj->size)
			return obj;
	}
	return NULL;
}


static uint32
area_protection(int prot)
{
	uint32 protection = 0;

	if ((prot & kProtRead) != 0)
		protection |= B_READ_AREA | B_KERNEL_READ_AREA;
	if ((prot & kProtWrite) != 0)
		protection |= B_WRITE_AREA | B_KERNEL_WRITE_AREA;
	if ((prot & kProtExec) != 0)
		protection |= B_EXECUTE_AREA;
	return protection;
}


/*!	The kernel view: the object's own area at \a offset, its pages locked
	while the view is wired.  The view holds an object reference.
*/
static int
map_kernel(nvmm_haiku_vmobj* obj, size_t offset, size_t size, bool wired,
	unsigned long* va)
{
	addr_t address = obj->base + offset;

	if (wired) {
		status_t status = lock_memory_etc(VMAddressSpace::KernelID(),
			(void*)address, size, B_READ_DEVICE);
		if (status != B_OK)
			return bsd_error(status);
	}
	os_vmobj_ref(obj);
	*va = address;
	return 0;
}


static void
unmap_kernel(unsigned long start, unsigned long end, bool wired)
{
	nvmm_haiku_vmobj* obj = object_at(start);

	if (obj == NULL) {
		panic("nvmm: no memory object at %#lx", start);
		return;
	}
	if (wired) {
		unlock_memory_etc(VMAddressSpace::KernelID(), (void*)start,
			end - start, B_READ_DEVICE);
	}
	os_vmobj_rel(obj);
}


/*!	The calling team's view: a new kernel area of the team over the
	object's cache, at exactly *\a va if \a fixed (replacing what the team
	has there, as munmap() would: never a kernel area, never while wired).
*/
static int
map_user(nvmm_haiku_vmobj* obj, size_t offset, size_t size, bool fixed,
	int prot, int maxprot, unsigned long* va)
{
	if (fixed && !is_user_address_range((void*)*va, size))
		return NVMM_HAIKU_EINVAL;

	team_view* view = (team_view*)malloc(sizeof(team_view));
	if (view == NULL)
		return NVMM_HAIKU_ENOMEM;

	virtual_address_restrictions placement = {};
	if (fixed) {
		status_t status = _user_unmap_memory((void*)*va, size);
		if (status != B_OK) {
			free(view);
			return bsd_error(status);
		}
		placement.address = (void*)*va;
		placement.address_specification = B_EXACT_ADDRESS;
	} else {
		placement.address = (void*)USER_BASE_ANY;
		placement.address_specification = B_RANDOMIZED_ANY_ADDRESS;
	}

	VMAddressSpace* addressSpace = VMAddressSpace::GetCurrent();
	if (addressSpace == NULL) {
		free(view);
		return NVMM_HAIKU_EINVAL;
	}

	VMArea* area;
	void* address;

	addressSpace->WriteLock();
	VMCache* cache = obj->cache;
	cache->Lock();
	status_t status = vm_map_cache(addressSpace, cache, offset, "nvmm memory",
		size, B_NO_LOCK,
		area_protection(prot) | B_SHARED_AREA | B_KERNEL_AREA,
		area_protection(maxprot) & B_USER_PROTECTION, REGION_NO_PRIVATE_MAP,
		CREATE_AREA_DONT_COMMIT_MEMORY, &placement, false, &area, &address);
	if (status == B_OK) {
		// the area's reference to the cache, as vm_clone_area() takes it
		cache->AcquireRefLocked();
		area->cache_type = CACHE_TYPE_RAM;
		view->team = addressSpace->ID();
		view->area = area->id;
		view->base = (addr_t)address;
		view->size = size;
	}
	cache->Unlock();
	addressSpace->WriteUnlock();
	addressSpace->Put();

	if (status != B_OK) {
		free(view);
		return bsd_error(status);
	}

	MutexLocker locker(sObjectsLock);
	view->next = obj->views;
	obj->views = view;
	*va = view->base;
	return 0;
}


/*!	Removes the calling team's views of memory objects within [start, end):
	only areas NVMM made, whatever else the team has there.
*/
static void
unmap_user(unsigned long start, unsigned long end)
{
	team_id team = team_get_current_team_id();
	team_view* found = NULL;

	{
		MutexLocker locker(sObjectsLock);
		for (nvmm_haiku_vmobj* obj = sObjects; obj != NULL; obj = obj->next) {
			team_view** link = &obj->views;
			while (*link != NULL) {
				team_view* view = *link;
				if (view->team == team && view->base >= start
						&& view->base + view->size <= end) {
					*link = view->next;
					view->next = found;
					found = view;
				} else
					link = &view->next;
			}
		}
	}

	while (found != NULL) {
		team_view* view = found;
		found = view->next;
		// waits while a range of the area is wired
		vm_delete_area(team, view->area, true);
		free(view);
	}
}


extern "C" int
os_vmobj_map(struct vm_map* map, unsigned long* va, unsigned long size,
	nvmm_haiku_vmobj* obj, long off, bool wired, bool fixed, bool shared,
	int prot, int maxprot)
{
	if (obj == NULL)
		return NVMM_HAIKU_ENOMEM;	// os_vmobj_create() failed
	if (size == 0 || !page_aligned(size) || off < 0 || !page_aligned(off)
			|| (size_t)off > obj->size || size > obj->size - off) {
		return NVMM_HAIKU_EINVAL;
	}

	switch (map->kind) {
		case NVMM_HAIKU_MAP_KERNEL:
			if (fixed)
				return NVMM_HAIKU_EINVAL;
			return map_kernel(obj, off, size, wired, va);
		case NVMM_HAIKU_MAP_CURPROC:
			return map_user(obj, off, size, fixed, prot, maxprot, va);
		case NVMM_HAIKU_MAP_GUEST:
			if (!fixed)
				return NVMM_HAIKU_EINVAL;
			return npt_map(map->pmap->npt, *va, size, obj, off, prot);
	}
	return NVMM_HAIKU_EINVAL;
}


extern "C" void
os_vmobj_unmap(struct vm_map* map, unsigned long start, unsigned long end,
	bool wired)
{
	switch (map->kind) {
		case NVMM_HAIKU_MAP_KERNEL:
			unmap_kernel(start, end, wired);
			break;
		case NVMM_HAIKU_MAP_CURPROC:
			unmap_user(start, end);
			break;
		case NVMM_HAIKU_MAP_GUEST:
			if (npt_unmap(map->pmap->npt, start, end) != 0)
				dprintf("nvmm: guest unmap %#lx-%#lx failed\n", start, end);
			break;
	}
}


// #pragma mark - the nested pmap's hooks


static void*
pmap_mem_alloc(void* ctx, size_t size)
{
	return malloc(size);
}


static void
pmap_mem_free(void* ctx, void* ptr, size_t size)
{
	free(ptr);
}


static void*
pmap_page_zalloc(void* ctx, uint64_t* pa)
{
	vm_page* page = allocate_page(false);
	if (page == NULL)
		return NULL;

	phys_addr_t address = page->physical_page_number * B_PAGE_SIZE;
	if (address >= KERNEL_PMAP_SIZE) {
		// outside the physical map (more RAM than it covers)
		free_page(address);
		return NULL;
	}
	*pa = address;
	return (void*)(KERNEL_PMAP_BASE + address);
}


static void
pmap_page_free(void* ctx, void* va, uint64_t pa)
{
	free_page(pa);
}


static int
pmap_obj_getpage(void* ctx, void* o, uint64_t offset, bool write,
	uint64_t* pa)
{
	nvmm_haiku_vmobj* obj = (nvmm_haiku_vmobj*)o;
	void* address = (void*)(obj->base + offset);

	// writable (B_READ_DEVICE) either way: the page is then the cache's own
	status_t status = lock_memory_etc(VMAddressSpace::KernelID(), address,
		B_PAGE_SIZE, B_READ_DEVICE);
	if (status != B_OK)
		return bsd_error(status);

	physical_entry entry;
	uint32 count = 1;
	status = get_memory_map_etc(VMAddressSpace::KernelID(), address,
		B_PAGE_SIZE, &entry, &count);
	if (status != B_OK || count != 1) {
		unlock_memory_etc(VMAddressSpace::KernelID(), address, B_PAGE_SIZE,
			B_READ_DEVICE);
		return status != B_OK ? bsd_error(status) : NVMM_HAIKU_EIO;
	}
	*pa = entry.address;
	return 0;
}


static void
pmap_obj_putpage(void* ctx, void* o, uint64_t offset, uint64_t pa)
{
	nvmm_haiku_vmobj* obj = (nvmm_haiku_vmobj*)o;

	unlock_memory_etc(VMAddressSpace::KernelID(), (void*)(obj->base + offset),
		B_PAGE_SIZE, B_READ_DEVICE);
}


static void
pmap_obj_ref(void* ctx, void* o)
{
	os_vmobj_ref((nvmm_haiku_vmobj*)o);
}


static void
pmap_obj_rel(void* ctx, void* o)
{
	os_vmobj_rel((nvmm_haiku_vmobj*)o);
}


static void
pmap_lock(void* ctx)
{
	mutex_lock(&((pmap*)ctx)->lock);
}


static void
pmap_unlock(void* ctx)
{
	mutex_unlock(&((pmap*)ctx)->lock);
}


/*!	Entries were removed: make every CPU leave guest mode before the pages
	go back (any interrupt makes a VM exit).
*/
static void
pmap_invalidated(void* ctx)
{
	nvmm_haiku_ipi_kickall();
}


static const npt_hooks kPmapHooks = {
	pmap_mem_alloc,
	pmap_mem_free,
	pmap_page_zalloc,
	pmap_page_free,
	pmap_obj_getpage,
	pmap_obj_putpage,
	pmap_obj_ref,
	pmap_obj_rel,
	pmap_lock,
	pmap_unlock,
	pmap_invalidated,
};


// #pragma mark - guest address spaces


static inline pmap*
pmap_of(struct vmspace* vm)
{
	return vm->vm_map.pmap;
}


/*!	NVMM does not check the result: this waits for memory. */
extern "C" struct vmspace*
os_vmspace_create(unsigned long lo, unsigned long hi)
{
	pmap* pm = (pmap*)nvmm_haiku_mem_alloc(sizeof(pmap), true);

	mutex_init(&pm->lock, "nvmm pmap");
	while ((pm->npt = npt_create(lo, hi, &kPmapHooks, pm)) == NULL)
		snooze(10000);
	pm->vmspace.vm_map.kind = NVMM_HAIKU_MAP_GUEST;
	pm->vmspace.vm_map.pmap = pm;
	pm->vmspace.vm_map.gen
		= (const unsigned long long*)npt_generation_ptr(pm->npt);
	return &pm->vmspace;
}


extern "C" void
os_vmspace_destroy(struct vmspace* vm)
{
	pmap* pm = pmap_of(vm);

	npt_destroy(pm->npt);
	os_vmobj_rel(pm->owned);
	mutex_destroy(&pm->lock);
	nvmm_haiku_mem_free(pm, sizeof(*pm));
}


/*!	Gives the vmspace the creator's reference of a memory object, dropped in
	os_vmspace_destroy(): the 2024 upstream never drops its reference of a
	machine's comm object, so the machine_create variation points hand it to
	the machine's vmspace.
*/
extern "C" void
nvmm_haiku_vmspace_own(struct vmspace* vm, nvmm_haiku_vmobj* obj)
{
	pmap* pm = pmap_of(vm);

	if (pm->owned != NULL)
		panic("nvmm: vmspace %p already owns an object", vm);
	pm->owned = obj;
}


extern "C" int
os_vmspace_fault(struct vmspace* vm, unsigned long gpa, int prot)
{
	return npt_fault(pmap_of(vm)->npt, gpa, prot);
}


extern "C" void
nvmm_haiku_pmap_set_ept(pmap* pm, bool adBits)
{
	unsigned int flags = adBits ? NPT_EPT_AD : 0;

	if ((x86_read_msr(kMsrVmxEptVpidCap) & kEptCapExecuteOnly) != 0)
		flags |= NPT_EPT_XONLY;
	if (npt_set_format(pm->npt, NPT_FORMAT_EPT, flags, NPT_EPT_MT_WB) != 0)
		panic("nvmm: cannot switch the nested pmap to EPT");
}


extern "C" void
nvmm_haiku_pmap_set_npt(pmap* pm)
{
	if (npt_set_format(pm->npt, NPT_FORMAT_NPT, 0, 0) != 0)
		panic("nvmm: cannot switch the nested pmap to NPT");
}


extern "C" unsigned long
nvmm_haiku_pmap_root_pa(pmap* pm)
{
	return npt_root_pa(pm->npt);
}


extern "C" void**
nvmm_haiku_pmap_mach(pmap* pm)
{
	return &pm->mach;
}
