// SPDX-License-Identifier: BSD-2-Clause
/*
 * Memory objects and address spaces in a process.
 *
 * A memory object (os_vmobj_t) is a memfd: anonymous memory that can be mapped at once into the
 * "kernel" (anywhere in the process), into the "calling process" (at the address libnvmm's caller
 * chose, MAP_FIXED replacing what was there, as uvm_map with UVM_FLAG_FIXED|UVM_FLAG_UNMAP does) and
 * into a guest.  Every view is a MAP_SHARED mapping of the same file, so all see the same pages.
 * Each successful os_vmobj_map() takes a reference that the mapping holds until it is unmapped;
 * os_vmobj_rel() drops the creator's.
 *
 * A guest address space (os_vmspace_t) is a struct pmap: the guest-physical ranges mapped onto
 * objects and, per range, which pages are "entered" -- the fake backend's nested page table.  A page
 * is entered by os_vmspace_fault(), the way a kernel fills its EPT/NPT on a nested page fault, and
 * leaves the table when its range is unmapped or replaced: an access through a stale entry after an
 * unmap would be the hosted form of a missed TLB invalidation.
 */

#include <sys/mman.h>

struct nvmm_hosted_vmobj {
	int refs;
	int fd;
	unsigned long size;
	unsigned char *base;		/* the whole object, mapped once for the fake backend */
};

/* One mapping of an object into a map: [start, end) from byte off of obj. */
struct nvmm_hosted_mapping {
	struct nvmm_hosted_mapping *next;
	struct vm_map *map;
	unsigned long start, end;
	struct nvmm_hosted_vmobj *obj;
	unsigned long off;
	int prot;
	unsigned char *entered;		/* guest maps: one bit per page */
};

struct pmap {
	struct vmspace vmspace;
	unsigned long lo, hi;
	void *mach;			/* os_pmap_mach() */
	struct nvmm_hosted_vmobj *owned;	/* released with the vmspace (nvmm_hosted_vmspace_own) */
	pthread_mutex_t lock;
	struct nvmm_hosted_mapping *mappings;
};

struct vm_map nvmm_hosted_kernel_map = { .kind = NVMM_HOSTED_MAP_KERNEL };
struct vm_map nvmm_hosted_curproc_map = { .kind = NVMM_HOSTED_MAP_CURPROC };

/* The kernel's and the process's mappings (guest maps keep theirs in their pmap). */
static pthread_mutex_t nvmm_hosted_maps_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long nvmm_hosted_live_vmobjs;
static struct nvmm_hosted_mapping *nvmm_hosted_host_mappings;

#define NVMM_HOSTED_PAGE	4096UL

struct nvmm_hosted_vmobj *os_vmobj_create(long size)
{
	struct nvmm_hosted_vmobj *obj = nvmm_hosted_mem_alloc(sizeof(*obj), 1);

	if (size < 0)
		panic("nvmm: os_vmobj_create(%ld)\n", size);
	obj->refs = 1;
	__atomic_add_fetch(&nvmm_hosted_live_vmobjs, 1, __ATOMIC_SEQ_CST);
	obj->size = (unsigned long)size;
	obj->fd = memfd_create("nvmm-vmobj", MFD_CLOEXEC);
	if (obj->fd < 0)
		panic("nvmm: memfd_create: %s\n", strerror(errno));
	if (ftruncate(obj->fd, size) != 0)
		panic("nvmm: ftruncate(%ld): %s\n", size, strerror(errno));
	if (size > 0) {
		obj->base = mmap(NULL, obj->size, PROT_READ | PROT_WRITE, MAP_SHARED, obj->fd, 0);
		if (obj->base == MAP_FAILED)
			panic("nvmm: mmap of a %ld-byte object: %s\n", size, strerror(errno));
	}
	return obj;
}

void os_vmobj_ref(struct nvmm_hosted_vmobj *obj)
{
	if (__atomic_fetch_add(&obj->refs, 1, __ATOMIC_SEQ_CST) <= 0)
		panic("nvmm: os_vmobj_ref of a released object %p\n", (void *)obj);
}

void os_vmobj_rel(struct nvmm_hosted_vmobj *obj)
{
	int left = __atomic_sub_fetch(&obj->refs, 1, __ATOMIC_SEQ_CST);

	if (left < 0)
		panic("nvmm: os_vmobj_rel of a released object %p\n", (void *)obj);
	if (left > 0)
		return;
	if (obj->base != NULL)
		munmap(obj->base, obj->size);
	close(obj->fd);
	nvmm_hosted_mem_free(obj, sizeof(*obj));
	__atomic_sub_fetch(&nvmm_hosted_live_vmobjs, 1, __ATOMIC_SEQ_CST);
}

unsigned long nvmm_hosted_vmobjs(void)
{
	return __atomic_load_n(&nvmm_hosted_live_vmobjs, __ATOMIC_SEQ_CST);
}

static int nvmm_hosted_prot(int prot)
{
	/* PROT_READ, PROT_WRITE and PROT_EXEC have the same values in BSD and Linux (1, 2, 4). */
	return prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
}

static unsigned long nvmm_hosted_npages(unsigned long start, unsigned long end)
{
	return (end - start) / NVMM_HOSTED_PAGE;
}

static struct nvmm_hosted_mapping **nvmm_hosted_list(struct vm_map *map)
{
	return map->kind == NVMM_HOSTED_MAP_GUEST ? &map->pmap->mappings : &nvmm_hosted_host_mappings;
}

static pthread_mutex_t *nvmm_hosted_lock_of(struct vm_map *map)
{
	return map->kind == NVMM_HOSTED_MAP_GUEST ? &map->pmap->lock : &nvmm_hosted_maps_lock;
}

static void nvmm_hosted_mapping_free(struct nvmm_hosted_mapping *m)
{
	os_vmobj_rel(m->obj);
	free(m->entered);
	free(m);
}

/* A copy of m limited to [start, end) (inside m), with its own object reference and entries. */
static struct nvmm_hosted_mapping *nvmm_hosted_mapping_part(const struct nvmm_hosted_mapping *m,
							      unsigned long start, unsigned long end)
{
	struct nvmm_hosted_mapping *p = nvmm_hosted_mem_alloc(sizeof(*p), 1);
	unsigned long i, first = nvmm_hosted_npages(m->start, start);

	*p = *m;
	p->next = NULL;
	p->start = start;
	p->end = end;
	p->off = m->off + (start - m->start);
	p->entered = NULL;
	if (m->entered != NULL) {
		p->entered = calloc(nvmm_hosted_npages(start, end) / 8 + 1, 1);
		for (i = 0; i < nvmm_hosted_npages(start, end); i++)
			if (m->entered[(first + i) / 8] & (1 << ((first + i) % 8)))
				p->entered[i / 8] |= 1 << (i % 8);
	}
	os_vmobj_ref(m->obj);
	return p;
}

/*
 * Remove [start, end) from the mappings of map, keeping the parts outside it; host maps also
 * lose the memory (munmap).  The caller holds the map's lock.
 */
static void nvmm_hosted_remove(struct vm_map *map, unsigned long start, unsigned long end)
{
	struct nvmm_hosted_mapping **pp = nvmm_hosted_list(map), *m;

	while ((m = *pp) != NULL) {
		if (m->map != map || m->end <= start || m->start >= end) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		if (m->start < start) {
			struct nvmm_hosted_mapping *left = nvmm_hosted_mapping_part(m, m->start, start);

			left->next = *pp;
			*pp = left;
			pp = &left->next;
		}
		if (m->end > end) {
			struct nvmm_hosted_mapping *right = nvmm_hosted_mapping_part(m, end, m->end);

			right->next = *pp;
			*pp = right;
			pp = &right->next;
		}
		nvmm_hosted_mapping_free(m);
	}
	if (map->kind != NVMM_HOSTED_MAP_GUEST && end > start)
		munmap((void *)start, end - start);
}

int os_vmobj_map(struct vm_map *map, unsigned long *va, unsigned long size,
		 struct nvmm_hosted_vmobj *obj, long off, _Bool wired, _Bool fixed,
		 _Bool shared, int prot, int maxprot)
{
	struct nvmm_hosted_mapping *m;
	pthread_mutex_t *lock = nvmm_hosted_lock_of(map);
	unsigned long start = *va;

	(void)wired;
	(void)shared;
	if (size == 0 || off < 0 || (unsigned long)off > obj->size || size > obj->size - (unsigned long)off ||
	    size % NVMM_HOSTED_PAGE != 0 || (unsigned long)off % NVMM_HOSTED_PAGE != 0)
		return EINVAL;
	if ((prot & ~maxprot) != 0)
		return EACCES;
	if (fixed && (start % NVMM_HOSTED_PAGE != 0 || start + size < start))
		return EINVAL;

	pthread_mutex_lock(lock);
	if (map->kind == NVMM_HOSTED_MAP_GUEST) {
		if (!fixed || start < map->pmap->lo || start + size > map->pmap->hi) {
			pthread_mutex_unlock(lock);
			return EINVAL;
		}
		nvmm_hosted_remove(map, start, start + size);
	} else {
		void *where;

		if (fixed)
			nvmm_hosted_remove(map, start, start + size);
		where = mmap(fixed ? (void *)start : NULL, size, nvmm_hosted_prot(prot),
			     MAP_SHARED | (fixed ? MAP_FIXED : 0), obj->fd, off);
		if (where == MAP_FAILED) {
			pthread_mutex_unlock(lock);
			return ENOMEM;
		}
		start = (unsigned long)where;
	}
	m = nvmm_hosted_mem_alloc(sizeof(*m), 1);
	m->map = map;
	m->start = start;
	m->end = start + size;
	m->obj = obj;
	m->off = (unsigned long)off;
	m->prot = nvmm_hosted_prot(prot);
	if (map->kind == NVMM_HOSTED_MAP_GUEST)
		m->entered = calloc(nvmm_hosted_npages(m->start, m->end) / 8 + 1, 1);
	os_vmobj_ref(obj);
	m->next = *nvmm_hosted_list(map);
	*nvmm_hosted_list(map) = m;
	pthread_mutex_unlock(lock);
	*va = start;
	return 0;
}

void os_vmobj_unmap(struct vm_map *map, unsigned long start, unsigned long end, _Bool wired)
{
	pthread_mutex_t *lock = nvmm_hosted_lock_of(map);

	(void)wired;
	pthread_mutex_lock(lock);
	nvmm_hosted_remove(map, start, end);
	pthread_mutex_unlock(lock);
}

/* Guest address spaces. */

struct vmspace *os_vmspace_create(unsigned long lo, unsigned long hi)
{
	struct pmap *pm = nvmm_hosted_mem_alloc(sizeof(*pm), 1);

	pm->vmspace.vm_map.kind = NVMM_HOSTED_MAP_GUEST;
	pm->vmspace.vm_map.pmap = pm;
	pm->lo = lo;
	pm->hi = hi;
	pthread_mutex_init(&pm->lock, NULL);
	return &pm->vmspace;
}

void os_vmspace_destroy(struct vmspace *vm)
{
	struct pmap *pm = vm->vm_map.pmap;
	struct nvmm_hosted_mapping *m;

	while ((m = pm->mappings) != NULL) {
		pm->mappings = m->next;
		nvmm_hosted_mapping_free(m);
	}
	if (pm->owned != NULL)
		os_vmobj_rel(pm->owned);
	pthread_mutex_destroy(&pm->lock);
	nvmm_hosted_mem_free(pm, sizeof(*pm));
}

void nvmm_hosted_vmspace_own(struct vmspace *vm, struct nvmm_hosted_vmobj *obj)
{
	vm->vm_map.pmap->owned = obj;
}

void **nvmm_hosted_pmap_mach(struct pmap *pm)
{
	return &pm->mach;
}

static struct nvmm_hosted_mapping *nvmm_hosted_guest_lookup(struct pmap *pm, unsigned long gpa)
{
	struct nvmm_hosted_mapping *m;

	for (m = pm->mappings; m != NULL; m = m->next)
		if (gpa >= m->start && gpa < m->end)
			return m;
	return NULL;
}

/* A nested page fault: enter the page if a mapping allows the access (0), else EFAULT. */
int os_vmspace_fault(struct vmspace *vm, unsigned long gpa, int prot)
{
	struct pmap *pm = vm->vm_map.pmap;
	struct nvmm_hosted_mapping *m;
	unsigned long page;
	int error = EFAULT;

	pthread_mutex_lock(&pm->lock);
	m = nvmm_hosted_guest_lookup(pm, gpa);
	if (m != NULL && (nvmm_hosted_prot(prot) & ~m->prot) == 0) {
		page = nvmm_hosted_npages(m->start, gpa & ~(NVMM_HOSTED_PAGE - 1));
		m->entered[page / 8] |= 1 << (page % 8);
		error = 0;
	}
	pthread_mutex_unlock(&pm->lock);
	return error;
}

void *nvmm_hosted_gpa_page(struct vmspace *vm, unsigned long gpa, int prot)
{
	struct pmap *pm = vm->vm_map.pmap;
	struct nvmm_hosted_mapping *m;
	unsigned long page;
	void *p = NULL;

	pthread_mutex_lock(&pm->lock);
	m = nvmm_hosted_guest_lookup(pm, gpa);
	if (m != NULL && (nvmm_hosted_prot(prot) & ~m->prot) == 0) {
		page = nvmm_hosted_npages(m->start, gpa & ~(NVMM_HOSTED_PAGE - 1));
		if (m->entered[page / 8] & (1 << (page % 8)))
			p = m->obj->base + m->off + (gpa - m->start);
	}
	pthread_mutex_unlock(&pm->lock);
	return p;
}
