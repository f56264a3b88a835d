// SPDX-License-Identifier: BSD-2-Clause
/*
 * Memory: kernel pages for the backends, memory objects, and guest address spaces.
 *
 * A memory object (os_vmobj_t) is a shmem file: pageable anonymous memory that can be mapped at
 * once into the calling process (vm_mmap, MAP_SHARED, so the process sees the object at the HVA it
 * registered and its children inherit it), into the kernel (vmap of the object's pages) and into a
 * guest (the nested pmap of shim/common/npt enters the same pages in the EPT/NPT tables).  Its
 * pages are unevictable, as wired guest memory must be: the nested tables and the kernel views hold
 * page references, and the pages never move while referenced.
 *
 * A guest address space (os_vmspace_t) is a struct pmap: the nested pmap, its lock, and the vm_map
 * NVMM maps objects into.  Removing guest mappings advances the pmap's invalidation generation,
 * which the backends compare before every VM entry, and interrupts every CPU so that a vCPU in
 * guest mode exits and flushes before the pages are released.
 */

struct nvmm_linux_vmobj {
	struct kref ref;
	struct file *file;
};

struct pmap {
	struct vmspace vmspace;
	struct npt_space *npt;
	struct mutex lock;		/* the nested pmap's lock (npt_hooks.lock) */
	void *mach;			/* os_pmap_mach() */
	struct nvmm_linux_vmobj *owned;	/* released with the vmspace (nvmm_linux_vmspace_own) */
};

struct vm_map nvmm_linux_kernel_map = { .kind = NVMM_LINUX_MAP_KERNEL };
struct vm_map nvmm_linux_curproc_map = { .kind = NVMM_LINUX_MAP_CURPROC };

/* Kernel memory for the backends. */

void *os_pagemem_zalloc(unsigned long size)
{
	return vzalloc(size);
}

void os_pagemem_free(void *ptr, unsigned long size)
{
	vfree(ptr);
}

/* One zeroed page, by physical address (SVM host save areas).  NVMM does not check: never fails. */
unsigned long os_pa_zalloc(void)
{
	nvmm_linux_may_sleep("os_pa_zalloc");
	return page_to_phys(alloc_page(GFP_KERNEL | __GFP_ZERO | __GFP_NOFAIL));
}

void os_pa_free(unsigned long pa)
{
	__free_page(pfn_to_page(PHYS_PFN(pa)));
}

/* Physically contiguous, zeroed, write-back pages (VMCS, VMCB, bitmaps): the direct map is WB. */
int os_contigpa_zalloc(unsigned long *pa, unsigned long *va, unsigned long npages)
{
	void *p;

	nvmm_linux_may_sleep("os_contigpa_zalloc");
	p = alloc_pages_exact(npages << PAGE_SHIFT, GFP_KERNEL | __GFP_ZERO);
	if (!p)
		return ENOMEM;
	*va = (unsigned long)p;
	*pa = virt_to_phys(p);
	return 0;
}

void os_contigpa_free(unsigned long pa, unsigned long va, unsigned long npages)
{
	free_pages_exact((void *)va, npages << PAGE_SHIFT);
}

/* Memory objects. */

struct nvmm_linux_vmobj *os_vmobj_create(long size)
{
	struct nvmm_linux_vmobj *obj;
	struct file *file;

	obj = kzalloc(sizeof(*obj), GFP_KERNEL_ACCOUNT);
	if (!obj)
		return NULL;
	file = shmem_file_setup("nvmm", size, VM_NORESERVE);
	if (IS_ERR(file)) {
		kfree(obj);
		return NULL;
	}
	mapping_set_unevictable(file->f_mapping);
	kref_init(&obj->ref);
	obj->file = file;
	return obj;
}

static void vmobj_release(struct kref *ref)
{
	struct nvmm_linux_vmobj *obj = container_of(ref, struct nvmm_linux_vmobj, ref);

	fput(obj->file);
	kfree(obj);
}

void os_vmobj_ref(struct nvmm_linux_vmobj *obj)
{
	kref_get(&obj->ref);
}

void os_vmobj_rel(struct nvmm_linux_vmobj *obj)
{
	if (obj)
		kref_put(&obj->ref, vmobj_release);
}

static struct page *vmobj_getpage(struct nvmm_linux_vmobj *obj, pgoff_t index)
{
	return shmem_read_mapping_page(obj->file->f_mapping, index);
}

/*
 * The kernel view: the object's pages, each with a reference the mapping holds until
 * os_vmobj_unmap(), mapped contiguously with vmap().
 */
static int vmobj_map_kernel(struct nvmm_linux_vmobj *obj, unsigned long off, unsigned long size,
			    unsigned long *va)
{
	unsigned long i, n = size >> PAGE_SHIFT;
	struct page **pages;
	void *addr;
	int error = ENOMEM;

	pages = kvcalloc(n, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return ENOMEM;
	for (i = 0; i < n; i++) {
		pages[i] = vmobj_getpage(obj, (off >> PAGE_SHIFT) + i);
		if (IS_ERR(pages[i])) {
			error = -PTR_ERR(pages[i]);
			goto fail;
		}
	}
	addr = vmap(pages, n, VM_MAP, PAGE_KERNEL);
	if (!addr)
		goto fail;
	kvfree(pages);
	*va = (unsigned long)addr;
	return 0;

fail:
	while (i-- > 0)
		put_page(pages[i]);
	kvfree(pages);
	return error;
}

static void vmobj_unmap_kernel(unsigned long start, unsigned long end)
{
	unsigned long va;

	for (va = start; va < end; va += PAGE_SIZE)
		put_page(vmalloc_to_page((void *)va));
	vunmap((void *)start);
}

/*
 * The calling process's view: a shared file mapping, at *va exactly if fixed (replacing what is
 * there).
 */
static int vmobj_map_user(struct nvmm_linux_vmobj *obj, unsigned long off, unsigned long size,
			  unsigned long *va, bool fixed, int prot)
{
	unsigned long addr;

	if (!current->mm)
		return EINVAL;
	addr = vm_mmap(obj->file, fixed ? *va : 0, size,
		       prot & (PROT_READ | PROT_WRITE | PROT_EXEC),
		       MAP_SHARED | (fixed ? MAP_FIXED : 0), off);
	if (IS_ERR_VALUE(addr))
		return -(long)addr;
	*va = addr;
	return 0;
}

int os_vmobj_map(struct vm_map *map, unsigned long *va, unsigned long size,
		 struct nvmm_linux_vmobj *obj, long off, bool wired, bool fixed,
		 bool shared, int prot, int maxprot)
{
	if (!obj)
		return ENOMEM;		/* os_vmobj_create() could not get a shmem file */
	if (!size || !PAGE_ALIGNED(size) || off < 0 || !PAGE_ALIGNED(off))
		return EINVAL;

	switch (map->kind) {
	case NVMM_LINUX_MAP_KERNEL:
		if (fixed)
			return EINVAL;
		return vmobj_map_kernel(obj, off, size, va);
	case NVMM_LINUX_MAP_CURPROC:
		return vmobj_map_user(obj, off, size, va, fixed, prot);
	case NVMM_LINUX_MAP_GUEST:
		if (!fixed)
			return EINVAL;
		return npt_map(map->pmap->npt, *va, size, obj, off, prot);
	}
	return EINVAL;
}

void os_vmobj_unmap(struct vm_map *map, unsigned long start, unsigned long end, bool wired)
{
	switch (map->kind) {
	case NVMM_LINUX_MAP_KERNEL:
		vmobj_unmap_kernel(start, end);
		break;
	case NVMM_LINUX_MAP_CURPROC:
		if (current->mm)
			vm_munmap(start, end - start);
		break;
	case NVMM_LINUX_MAP_GUEST:
		WARN_ON_ONCE(npt_unmap(map->pmap->npt, start, end));
		break;
	}
}

/* The nested pmap's hooks. */

static void *pmap_mem_alloc(void *ctx, size_t size)
{
	if (size <= 2 * PAGE_SIZE)
		return kmalloc(size, GFP_KERNEL_ACCOUNT | __GFP_NOFAIL);
	return kvmalloc(size, GFP_KERNEL_ACCOUNT);
}

static void pmap_mem_free(void *ctx, void *p, size_t size)
{
	kvfree(p);
}

static void *pmap_page_zalloc(void *ctx, uint64_t *pa)
{
	struct page *page;

	nvmm_linux_may_sleep("the nested pmap's page allocation");
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page)
		return NULL;
	*pa = page_to_phys(page);
	return page_address(page);
}

static void pmap_page_free(void *ctx, void *va, uint64_t pa)
{
	free_page((unsigned long)va);
}

static int pmap_obj_getpage(void *ctx, void *o, uint64_t offset, bool write, uint64_t *pa)
{
	struct page *page = vmobj_getpage(o, offset >> PAGE_SHIFT);

	if (IS_ERR(page))
		return -PTR_ERR(page);
	if (write)
		set_page_dirty_lock(page);
	*pa = page_to_phys(page);
	return 0;
}

static void pmap_obj_putpage(void *ctx, void *o, uint64_t offset, uint64_t pa)
{
	put_page(pfn_to_page(PHYS_PFN(pa)));
}

static void pmap_obj_ref(void *ctx, void *o)
{
	os_vmobj_ref(o);
}

static void pmap_obj_rel(void *ctx, void *o)
{
	os_vmobj_rel(o);
}

static void pmap_lock(void *ctx)
{
	mutex_lock(&((struct pmap *)ctx)->lock);
}

static void pmap_unlock(void *ctx)
{
	mutex_unlock(&((struct pmap *)ctx)->lock);
}

/* Entries were removed: make every CPU leave guest mode before the pages go back (an IPI exits). */
static void pmap_invalidated(void *ctx)
{
	nvmm_linux_ipi_kickall();
}

static const struct npt_hooks pmap_hooks = {
	.mem_alloc = pmap_mem_alloc,
	.mem_free = pmap_mem_free,
	.page_zalloc = pmap_page_zalloc,
	.page_free = pmap_page_free,
	.obj_getpage = pmap_obj_getpage,
	.obj_putpage = pmap_obj_putpage,
	.obj_ref = pmap_obj_ref,
	.obj_rel = pmap_obj_rel,
	.lock = pmap_lock,
	.unlock = pmap_unlock,
	.invalidated = pmap_invalidated,
};

/* Guest address spaces.  NVMM does not check the result: the allocations below do not fail. */
struct vmspace *os_vmspace_create(unsigned long lo, unsigned long hi)
{
	struct pmap *pm = kzalloc(sizeof(*pm), GFP_KERNEL_ACCOUNT | __GFP_NOFAIL);

	mutex_init(&pm->lock);
	while (!(pm->npt = npt_create(lo, hi, &pmap_hooks, pm)))
		schedule_timeout_uninterruptible(1);	/* the root table: wait for a page */
	pm->vmspace.vm_map.kind = NVMM_LINUX_MAP_GUEST;
	pm->vmspace.vm_map.pmap = pm;
	pm->vmspace.vm_map.gen = npt_generation_ptr(pm->npt);
	return &pm->vmspace;
}

void os_vmspace_destroy(struct vmspace *vm)
{
	struct pmap *pm = container_of(vm, struct pmap, vmspace);

	npt_destroy(pm->npt);
	os_vmobj_rel(pm->owned);
	mutex_destroy(&pm->lock);
	kfree(pm);
}

/*
 * Give the vmspace the creator's reference of a memory object, dropped in
 * os_vmspace_destroy().  The 2024 upstream creates the machine's comm object and never drops
 * that reference (upstream fixed it in 2026), so every machine leaked its comm pages: the
 * machine_create variation points hand it to the machine's vmspace instead.
 */
void nvmm_linux_vmspace_own(struct vmspace *vm, struct nvmm_linux_vmobj *obj)
{
	struct pmap *pm = container_of(vm, struct pmap, vmspace);

	WARN_ON_ONCE(pm->owned);
	pm->owned = obj;
}

int os_vmspace_fault(struct vmspace *vm, unsigned long gpa, int prot)
{
	return npt_fault(vm->vm_map.pmap->npt, gpa, prot);
}

/* Intel SDM Vol. 3D, A.10: IA32_VMX_EPT_VPID_CAP bit 0, execute-only EPT translations. */
#define NVMM_EPT_CAP_EXECUTE_ONLY	BIT_ULL(0)

void nvmm_linux_pmap_set_ept(struct pmap *pm, bool ad_bits)
{
	unsigned int flags = ad_bits ? NPT_EPT_AD : 0;
	u64 cap;

	if (!rdmsrl_safe(MSR_IA32_VMX_EPT_VPID_CAP, &cap) && (cap & NVMM_EPT_CAP_EXECUTE_ONLY))
		flags |= NPT_EPT_XONLY;
	WARN_ON(npt_set_format(pm->npt, NPT_FORMAT_EPT, flags, NPT_EPT_MT_WB));
}

void nvmm_linux_pmap_set_npt(struct pmap *pm)
{
	WARN_ON(npt_set_format(pm->npt, NPT_FORMAT_NPT, 0, 0));
}

unsigned long nvmm_linux_pmap_root_pa(struct pmap *pm)
{
	return npt_root_pa(pm->npt);
}

void **nvmm_linux_pmap_mach(struct pmap *pm)
{
	return &pm->mach;
}
