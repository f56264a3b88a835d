// SPDX-License-Identifier: BSD-2-Clause
/*
 * nvmm-port: portable nested page tables for NVMM ports, a target-independent nested pmap (see
 * nvmm_npt.h for the contract).
 *
 * Freestanding: this file includes nothing but nvmm_npt.h, uses no global state and allocates only
 * through the OS hooks.  Written from the documented entry formats:
 *   - AMD64 Architecture Programmer's Manual Vol. 2: 15.25 "Nested Paging" (the nested tables are
 *     ordinary long-mode tables, walked as user-mode accesses) and 5.3/5.4 "Long-Mode Page
 *     Translation" / "Page-Translation-Table Entry Fields" (Figures 5-20 to 5-23).
 *   - Intel SDM Vol. 3C: 29.3.2 "EPT Translation Mechanism" and Figure 29-1 / Tables 29-1, 29-3,
 *     29-5, 29-6 (EPT PML4E, PDPTE, PDE referencing a table, PTE mapping a 4-KByte page);
 *     "EPT Misconfigurations", "Accessed and Dirty Flags for EPT", "EPT and Memory Typing" in the
 *     same section (Chapter 28 in editions before 2023).
 *
 * Data structures.  The hardware tables hold physical addresses only, and a kernel cannot in
 * general turn one back into a pointer, so every table has a small shadow, struct npt_table: its
 * kernel VA, its PA, for non-leaf tables the 512 pointers to the shadows of its children, and the
 * number of present entries it holds.  The walk of this file follows the shadows; the CPU follows
 * the entries.  Mappings are a sorted array of non-overlapping ranges (binary search on fault).
 *
 * Concurrency.  Every entry point except npt_root_pa() and npt_generation() holds the OS lock, so
 * the shadows and the mapping array are only touched under it.  The CPUs running the guest walk
 * the hardware tables at any time, so every entry is written with one 64-bit atomic store, and a
 * new table is zeroed (page_zalloc) before the release store that links it.
 *
 * Table freeing.  A table left without present entries by npt_unmap() is unlinked in the same
 * pass that clears the leaves, and freed after the invalidation, like the pages (a CPU's
 * paging-structure caches may still point into it until then).  The root table lives as long as
 * the space.  Tables made empty otherwise (a fault that failed after building the path) stay until
 * an unmap covers them or the space is destroyed.
 */

#include "nvmm_npt.h"

/* -------------------------------------------------------------------------------------------- */
/* Entry formats                                                                                 */
/* -------------------------------------------------------------------------------------------- */

#define NPT_ENTRIES		512u
#define NPT_LEVELS		4
#define NPT_PA_MASK		0x000ffffffffff000ULL	/* bits 51:12, both formats */

/*
 * A leaf being removed by npt_unmap(), between the store that made it not-present and the
 * putpage of its page: the permission bits are clear (not present in either format) and the PA is
 * kept, tagged with bit 11.  NPT: bit 11 is one of the AVL bits 11:9, free for software.  EPT: bit
 * 11 is ignored (Table 29-6); and the processor ignores bits 63:3 of an entry whose bits 2:0 are 0.
 * Such entries exist only while npt_unmap() holds the lock.
 */
#define NPT_SW_ZOMBIE		(1ULL << 11)

/* AMD long-mode entry bits (APM Vol. 2, 5.4.1). */
#define NPTE_P			(1ULL << 0)	/* present */
#define NPTE_RW			(1ULL << 1)	/* writable */
#define NPTE_US			(1ULL << 2)	/* user: nested walks are user accesses */
#define NPTE_NX			(1ULL << 63)	/* no-execute (EFER.NXE, on in x86-64 kernels) */

/* Intel EPT entry bits (SDM Vol. 3C, Tables 29-1 to 29-6). */
#define EPTE_R			(1ULL << 0)
#define EPTE_W			(1ULL << 1)
#define EPTE_X			(1ULL << 2)	/* supervisor execute (all execute without MBEC) */
#define EPTE_RWX		(EPTE_R | EPTE_W | EPTE_X)
#define EPTE_MT_SHIFT		3		/* leaf memory type, bits 5:3 */
#define EPTE_IPAT		(1ULL << 6)	/* leaf: ignore PAT */
#define EPTE_A			(1ULL << 8)	/* accessed, when EPTP bit 6 enables A/D */
#define EPTE_D			(1ULL << 9)	/* dirty (leaves), idem */

/* The R/W/X bits of EPT are the PROT_* values; that is used below. */
#if NPT_PROT_READ != 1 || NPT_PROT_WRITE != 2 || NPT_PROT_EXEC != 4
#error "NPT_PROT_* must match the EPT R/W/X bit positions"
#endif

struct npt_table {
	uint64_t *hw;			/* the 512 hardware entries (kernel VA) */
	uint64_t pa;			/* their physical address */
	struct npt_table **sub;		/* levels 4..2: the children's shadows; 1: NULL */
	uint32_t nlive;			/* present entries in hw[] */
};

#define NPT_SUB_SIZE		(NPT_ENTRIES * sizeof(struct npt_table *))

struct npt_mapping {
	uint64_t gpa;			/* [gpa, end) */
	uint64_t end;
	uint64_t obj_off;		/* offset of gpa in obj */
	void *obj;
	int prot;			/* as asked for; see npt_effprot() */
};

struct npt_space {
	struct npt_hooks h;
	void *ctx;
	uint64_t lo, hi;
	struct npt_table *root;		/* level 4; never freed before npt_destroy() */
	uint64_t gen;			/* invalidation generation; atomic */
	enum npt_format fmt;
	unsigned int flags;		/* NPT_EPT_* */
	unsigned int memtype;		/* EPT leaf memory type */
	bool populated;			/* a fault started building entries: format fixed */
	struct npt_mapping *maps;	/* sorted by gpa, non-overlapping */
	size_t nmaps, capmaps;
};

static inline uint64_t
npt_load(const uint64_t *pe)
{
	return __atomic_load_n(pe, __ATOMIC_RELAXED);
}

static inline void
npt_store(uint64_t *pe, uint64_t e)
{
	__atomic_store_n(pe, e, __ATOMIC_RELEASE);
}

static inline unsigned int
npt_shift(int level)
{
	return 12u + 9u * (unsigned int)(level - 1);
}

static inline unsigned int
npt_index(uint64_t gpa, int level)
{
	return (unsigned int)(gpa >> npt_shift(level)) & (NPT_ENTRIES - 1);
}

static inline bool
npt_present(const struct npt_space *s, uint64_t e)
{
	if (s->fmt == NPT_FORMAT_EPT)
		return (e & EPTE_RWX) != 0;	/* bits 2:0 all 0: not present */
	return (e & NPTE_P) != 0;
}

/*
 * What the hardware will actually grant for a mapping's protection.  NPT cannot refuse reads of a
 * present page; EPT can only if the CPU supports execute-only translations.  Write without read is
 * refused by npt_map().  Faults are checked against this, so that the outcome of an access does
 * not depend on whether another access populated the page first.
 */
static int
npt_effprot(const struct npt_space *s, int prot)
{
	if (prot == 0)
		return 0;
	if (s->fmt == NPT_FORMAT_NPT)
		return prot | NPT_PROT_READ;
	if ((prot & NPT_PROT_READ) == 0 && (s->flags & NPT_EPT_XONLY) == 0)
		return prot | NPT_PROT_READ;
	return prot;
}

/* A non-leaf entry linking the table at @pa: full rights, leaves decide. */
static uint64_t
npt_nonleaf(const struct npt_space *s, uint64_t pa)
{
	uint64_t e = pa & NPT_PA_MASK;

	if (s->fmt == NPT_FORMAT_EPT) {
		/* Bits 7:3 of a non-leaf EPT entry are reserved (0), 11:8 ignored or A. */
		e |= EPTE_RWX;
		if (s->flags & NPT_EPT_AD)
			e |= EPTE_A;
	} else {
		/* PWT=PCD=0: the table itself is write-back.  NX=0: leaves decide. */
		e |= NPTE_P | NPTE_RW | NPTE_US;
	}
	return e;
}

/* A 4 KiB leaf mapping @pa with effective protection @eprot (non-zero). */
static uint64_t
npt_leaf(const struct npt_space *s, uint64_t pa, int eprot)
{
	uint64_t e = pa & NPT_PA_MASK;

	if (s->fmt == NPT_FORMAT_EPT) {
		e |= (uint64_t)eprot & EPTE_RWX;
		e |= (uint64_t)s->memtype << EPTE_MT_SHIFT;
		if (s->flags & NPT_EPT_IPAT)
			e |= EPTE_IPAT;
		if (s->flags & NPT_EPT_AD) {
			e |= EPTE_A;
			if (eprot & NPT_PROT_WRITE)
				e |= EPTE_D;
		}
	} else {
		/* PAT index 0 (PWT=PCD=PAT=0): write-back under the host's PAT. */
		e |= NPTE_P | NPTE_US;
		if (eprot & NPT_PROT_WRITE)
			e |= NPTE_RW;
		if ((eprot & NPT_PROT_EXEC) == 0)
			e |= NPTE_NX;
	}
	return e;
}

/* The protection a present leaf grants. */
static int
npt_decode(const struct npt_space *s, uint64_t e)
{
	int prot;

	if (s->fmt == NPT_FORMAT_EPT)
		return (int)(e & EPTE_RWX);
	prot = NPT_PROT_READ;
	if (e & NPTE_RW)
		prot |= NPT_PROT_WRITE;
	if ((e & NPTE_NX) == 0)
		prot |= NPT_PROT_EXEC;
	return prot;
}

/* -------------------------------------------------------------------------------------------- */
/* Tables                                                                                        */
/* -------------------------------------------------------------------------------------------- */

static int
npt_table_alloc(struct npt_space *s, int level, struct npt_table **out)
{
	struct npt_table *t;
	uint64_t *hw, pa = 0;
	unsigned int i;

	t = s->h.mem_alloc(s->ctx, sizeof(*t));
	if (t == NULL)
		return NPT_ENOMEM;
	t->sub = NULL;
	t->nlive = 0;
	if (level > 1) {
		t->sub = s->h.mem_alloc(s->ctx, NPT_SUB_SIZE);
		if (t->sub == NULL) {
			s->h.mem_free(s->ctx, t, sizeof(*t));
			return NPT_ENOMEM;
		}
		for (i = 0; i < NPT_ENTRIES; i++)
			t->sub[i] = NULL;
	}
	hw = s->h.page_zalloc(s->ctx, &pa);
	if (hw == NULL || (pa & ~NPT_PA_MASK) != 0) {
		if (hw != NULL)
			s->h.page_free(s->ctx, hw, pa);
		if (t->sub != NULL)
			s->h.mem_free(s->ctx, t->sub, NPT_SUB_SIZE);
		s->h.mem_free(s->ctx, t, sizeof(*t));
		return hw == NULL ? NPT_ENOMEM : NPT_EIO;
	}
	t->hw = hw;
	t->pa = pa;
	*out = t;
	return 0;
}

static void
npt_table_free(struct npt_space *s, struct npt_table *t)
{
	s->h.page_free(s->ctx, t->hw, t->pa);
	if (t->sub != NULL)
		s->h.mem_free(s->ctx, t->sub, NPT_SUB_SIZE);
	s->h.mem_free(s->ctx, t, sizeof(*t));
}

/* -------------------------------------------------------------------------------------------- */
/* Mappings                                                                                      */
/* -------------------------------------------------------------------------------------------- */

/* Index of the first mapping ending after @gpa (nmaps if none). */
static size_t
npt_find(const struct npt_space *s, uint64_t gpa)
{
	size_t lo = 0, hi = s->nmaps, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (s->maps[mid].end <= gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct npt_mapping *
npt_lookup(const struct npt_space *s, uint64_t gpa)
{
	size_t i = npt_find(s, gpa);

	if (i < s->nmaps && s->maps[i].gpa <= gpa)
		return &s->maps[i];
	return NULL;
}

/* Make room for @need mappings. */
static int
npt_maps_reserve(struct npt_space *s, size_t need)
{
	struct npt_mapping *nmaps;
	size_t ncap, i;

	if (need <= s->capmaps)
		return 0;
	ncap = s->capmaps != 0 ? s->capmaps : 8;
	while (ncap < need)
		ncap *= 2;
	nmaps = s->h.mem_alloc(s->ctx, ncap * sizeof(*nmaps));
	if (nmaps == NULL)
		return NPT_ENOMEM;
	for (i = 0; i < s->nmaps; i++)
		nmaps[i] = s->maps[i];
	if (s->maps != NULL)
		s->h.mem_free(s->ctx, s->maps, s->capmaps * sizeof(*s->maps));
	s->maps = nmaps;
	s->capmaps = ncap;
	return 0;
}

static void
npt_maps_insert(struct npt_space *s, size_t at, const struct npt_mapping *m)
{
	size_t i;

	for (i = s->nmaps; i > at; i--)
		s->maps[i] = s->maps[i - 1];
	s->maps[at] = *m;
	s->nmaps++;
}

static void
npt_maps_remove(struct npt_space *s, size_t at)
{
	size_t i;

	for (i = at; i + 1 < s->nmaps; i++)
		s->maps[i] = s->maps[i + 1];
	s->nmaps--;
}

/* Hand back the page of the leaf at @gpa, whose entry held @e. */
static void
npt_putpage(struct npt_space *s, uint64_t gpa, uint64_t e)
{
	const struct npt_mapping *m = npt_lookup(s, gpa);

	/* Leaves exist only inside mappings, and mappings go away only after their leaves. */
	if (m != NULL)
		s->h.obj_putpage(s->ctx, m->obj, m->obj_off + (gpa - m->gpa), e & NPT_PA_MASK);
}

/* -------------------------------------------------------------------------------------------- */
/* Walks over a range [lo, hi) below a table covering [base, base + 512 << shift(level))         */
/* -------------------------------------------------------------------------------------------- */

static void
npt_clip(uint64_t base, int level, uint64_t lo, uint64_t hi, unsigned int *first,
	 unsigned int *last)
{
	unsigned int shift = npt_shift(level);
	uint64_t l;

	*first = lo <= base ? 0 : (unsigned int)((lo - base) >> shift);
	l = (hi - 1 - base) >> shift;
	*last = l >= NPT_ENTRIES ? NPT_ENTRIES - 1 : (unsigned int)l;
}

static inline uint64_t
npt_max(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static inline uint64_t
npt_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * Unmap, step 1: make every present leaf in [lo, hi) not present (keeping its PA, tagged), and
 * unlink every table of the range left without present entries.  Returns the number of present
 * entries changed.
 */
static uint64_t
npt_zap(struct npt_space *s, struct npt_table *t, int level, uint64_t base, uint64_t lo,
	uint64_t hi)
{
	unsigned int i, first, last, shift = npt_shift(level);
	struct npt_table *c;
	uint64_t e, cbase, n = 0;

	npt_clip(base, level, lo, hi, &first, &last);
	for (i = first; i <= last; i++) {
		if (level == 1) {
			e = npt_load(&t->hw[i]);
			if (!npt_present(s, e))
				continue;
			npt_store(&t->hw[i], (e & NPT_PA_MASK) | NPT_SW_ZOMBIE);
			t->nlive--;
			n++;
			continue;
		}
		c = t->sub[i];
		if (c == NULL)
			continue;
		cbase = base + ((uint64_t)i << shift);
		n += npt_zap(s, c, level - 1, cbase, npt_max(lo, cbase),
		    npt_min(hi, cbase + (1ULL << shift)));
		if (c->nlive == 0 && npt_present(s, npt_load(&t->hw[i]))) {
			npt_store(&t->hw[i], 0);
			t->nlive--;
			n++;
		}
	}
	return n;
}

/*
 * Unmap, step 3 (after the invalidation): clear the tagged leaves of [lo, hi) and put their pages,
 * free the tables step 1 unlinked.
 */
static void
npt_reap(struct npt_space *s, struct npt_table *t, int level, uint64_t base, uint64_t lo,
	 uint64_t hi)
{
	unsigned int i, first, last, shift = npt_shift(level);
	struct npt_table *c;
	uint64_t e, cbase;

	npt_clip(base, level, lo, hi, &first, &last);
	for (i = first; i <= last; i++) {
		if (level == 1) {
			e = npt_load(&t->hw[i]);
			if ((e & NPT_SW_ZOMBIE) == 0)
				continue;
			npt_store(&t->hw[i], 0);
			npt_putpage(s, base + ((uint64_t)i << shift), e);
			continue;
		}
		c = t->sub[i];
		if (c == NULL)
			continue;
		cbase = base + ((uint64_t)i << shift);
		npt_reap(s, c, level - 1, cbase, npt_max(lo, cbase),
			 npt_min(hi, cbase + (1ULL << shift)));
		if (c->nlive == 0) {
			/* Unlinked by step 1, so none of its children is left either. */
			t->sub[i] = NULL;
			npt_table_free(s, c);
		}
	}
}

/* Destroy: put every page still entered below @t and free @t's subtree and @t. */
static void
npt_free_tree(struct npt_space *s, struct npt_table *t, int level, uint64_t base)
{
	unsigned int i, shift = npt_shift(level);
	uint64_t e;

	for (i = 0; i < NPT_ENTRIES; i++) {
		if (level == 1) {
			e = npt_load(&t->hw[i]);
			if (npt_present(s, e) || (e & NPT_SW_ZOMBIE) != 0)
				npt_putpage(s, base + ((uint64_t)i << shift), e);
		} else if (t->sub[i] != NULL) {
			npt_free_tree(s, t->sub[i], level - 1, base + ((uint64_t)i << shift));
		}
	}
	npt_table_free(s, t);
}

/* -------------------------------------------------------------------------------------------- */
/* API                                                                                           */
/* -------------------------------------------------------------------------------------------- */

struct npt_space *
npt_create(uint64_t lo, uint64_t hi, const struct npt_hooks *hooks, void *ctx)
{
	struct npt_space *s;

	if (hooks == NULL || hooks->mem_alloc == NULL || hooks->mem_free == NULL ||
	    hooks->page_zalloc == NULL || hooks->page_free == NULL ||
	    hooks->obj_getpage == NULL || hooks->obj_putpage == NULL ||
	    hooks->obj_ref == NULL || hooks->obj_rel == NULL || hooks->lock == NULL ||
	    hooks->unlock == NULL || hooks->invalidated == NULL)
		return NULL;
	if ((lo & NPT_PAGE_MASK) != 0 || (hi & NPT_PAGE_MASK) != 0 || lo >= hi ||
	    hi > NPT_GPA_LIMIT)
		return NULL;

	s = hooks->mem_alloc(ctx, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->h = *hooks;
	s->ctx = ctx;
	s->lo = lo;
	s->hi = hi;
	s->root = NULL;
	s->gen = 1;
	s->fmt = NPT_FORMAT_NPT;
	s->flags = 0;
	s->memtype = 0;
	s->populated = false;
	s->maps = NULL;
	s->nmaps = 0;
	s->capmaps = 0;
	if (npt_table_alloc(s, NPT_LEVELS, &s->root) != 0) {
		hooks->mem_free(ctx, s, sizeof(*s));
		return NULL;
	}
	return s;
}

int
npt_set_format(struct npt_space *s, enum npt_format fmt, unsigned int flags,
	       unsigned int ept_memtype)
{
	int error = 0;

	switch (fmt) {
	case NPT_FORMAT_NPT:
		if (flags != 0 || ept_memtype != 0)
			return NPT_EINVAL;
		break;
	case NPT_FORMAT_EPT:
		if ((flags & ~(NPT_EPT_AD | NPT_EPT_XONLY | NPT_EPT_IPAT)) != 0)
			return NPT_EINVAL;
		if (ept_memtype != NPT_EPT_MT_UC && ept_memtype != NPT_EPT_MT_WC &&
		    ept_memtype != NPT_EPT_MT_WT && ept_memtype != NPT_EPT_MT_WP &&
		    ept_memtype != NPT_EPT_MT_WB)
			return NPT_EINVAL;
		break;
	default:
		return NPT_EINVAL;
	}

	s->h.lock(s->ctx);
	if (s->populated) {
		error = NPT_EBUSY;
	} else {
		s->fmt = fmt;
		s->flags = flags;
		s->memtype = ept_memtype;
	}
	s->h.unlock(s->ctx);
	return error;
}

void
npt_destroy(struct npt_space *s)
{
	struct npt_hooks h = s->h;
	void *ctx = s->ctx;
	size_t i;

	h.lock(ctx);
	npt_free_tree(s, s->root, NPT_LEVELS, 0);
	s->root = NULL;
	for (i = 0; i < s->nmaps; i++)
		h.obj_rel(ctx, s->maps[i].obj);
	if (s->maps != NULL)
		h.mem_free(ctx, s->maps, s->capmaps * sizeof(*s->maps));
	h.unlock(ctx);
	h.mem_free(ctx, s, sizeof(*s));
}

int
npt_map(struct npt_space *s, uint64_t gpa, uint64_t size, void *obj, uint64_t obj_offset,
	int prot)
{
	struct npt_mapping m;
	size_t i;
	int error;

	if ((prot & ~NPT_PROT_ALL) != 0 ||
	    ((prot & NPT_PROT_WRITE) != 0 && (prot & NPT_PROT_READ) == 0))
		return NPT_EINVAL;
	if (((gpa | size | obj_offset) & NPT_PAGE_MASK) != 0 || size == 0)
		return NPT_EINVAL;
	if (gpa < s->lo || gpa >= s->hi || size > s->hi - gpa)
		return NPT_EINVAL;
	if (obj_offset + size < obj_offset)
		return NPT_EINVAL;

	m.gpa = gpa;
	m.end = gpa + size;
	m.obj_off = obj_offset;
	m.obj = obj;
	m.prot = prot;

	s->h.lock(s->ctx);
	i = npt_find(s, gpa);
	if (i < s->nmaps && s->maps[i].gpa < m.end) {
		error = NPT_EEXIST;
		goto out;
	}
	error = npt_maps_reserve(s, s->nmaps + 1);
	if (error != 0)
		goto out;
	npt_maps_insert(s, i, &m);
	s->h.obj_ref(s->ctx, obj);
out:
	s->h.unlock(s->ctx);
	return error;
}

int
npt_unmap(struct npt_space *s, uint64_t gpa, uint64_t end)
{
	struct npt_mapping *m, right;
	size_t i;
	int error = 0;

	if (((gpa | end) & NPT_PAGE_MASK) != 0 || gpa >= end || gpa < s->lo || end > s->hi)
		return NPT_EINVAL;

	s->h.lock(s->ctx);

	/* A mapping containing the range with room on both sides splits: reserve first. */
	i = npt_find(s, gpa);
	if (i < s->nmaps && s->maps[i].gpa < gpa && s->maps[i].end > end) {
		error = npt_maps_reserve(s, s->nmaps + 1);
		if (error != 0)
			goto out;
	}

	/* 1. Entries out of the hardware's reach; 2. everyone told; 3. pages and tables back. */
	if (npt_zap(s, s->root, NPT_LEVELS, 0, gpa, end) != 0) {
		__atomic_add_fetch(&s->gen, 1, __ATOMIC_RELEASE);
		s->h.invalidated(s->ctx);
	}
	npt_reap(s, s->root, NPT_LEVELS, 0, gpa, end);

	/* The mappings themselves, now that no page of theirs is entered in the range. */
	i = npt_find(s, gpa);
	while (i < s->nmaps && s->maps[i].gpa < end) {
		m = &s->maps[i];
		if (m->gpa >= gpa && m->end <= end) {
			s->h.obj_rel(s->ctx, m->obj);
			npt_maps_remove(s, i);
		} else if (m->gpa < gpa && m->end > end) {
			right = *m;
			right.obj_off += end - m->gpa;
			right.gpa = end;
			m->end = gpa;
			npt_maps_insert(s, i + 1, &right);	/* reserved above */
			s->h.obj_ref(s->ctx, right.obj);
			i += 2;
		} else if (m->gpa < gpa) {
			m->end = gpa;
			i++;
		} else {
			m->obj_off += end - m->gpa;
			m->gpa = end;
			i++;
		}
	}
out:
	s->h.unlock(s->ctx);
	return error;
}

int
npt_fault(struct npt_space *s, uint64_t gpa, int prot)
{
	const struct npt_mapping *m;
	struct npt_table *t, *c;
	uint64_t page, pa, e;
	unsigned int i;
	int level, eprot, error = 0;

	if (prot == 0 || (prot & ~NPT_PROT_ALL) != 0)
		return NPT_EINVAL;
	if (gpa < s->lo || gpa >= s->hi)
		return NPT_EFAULT;
	page = gpa & ~NPT_PAGE_MASK;

	s->h.lock(s->ctx);
	m = npt_lookup(s, page);
	if (m == NULL) {
		error = NPT_EFAULT;
		goto out;
	}
	eprot = npt_effprot(s, m->prot);
	if ((prot & ~eprot) != 0) {
		error = NPT_EACCES;
		goto out;
	}
	s->populated = true;

	t = s->root;
	for (level = NPT_LEVELS; level > 1; level--) {
		i = npt_index(page, level);
		c = t->sub[i];
		if (c == NULL) {
			error = npt_table_alloc(s, level - 1, &c);
			if (error != 0)
				goto out;
			t->sub[i] = c;
			npt_store(&t->hw[i], npt_nonleaf(s, c->pa));
			t->nlive++;
		}
		t = c;
	}

	i = npt_index(page, 1);
	e = npt_load(&t->hw[i]);
	if (npt_present(s, e))
		goto out;	/* entered with the mapping's full protection already */

	pa = 0;
	error = s->h.obj_getpage(s->ctx, m->obj, m->obj_off + (page - m->gpa),
	    (eprot & NPT_PROT_WRITE) != 0, &pa);
	if (error != 0)
		goto out;
	if ((pa & ~NPT_PA_MASK) != 0) {
		s->h.obj_putpage(s->ctx, m->obj, m->obj_off + (page - m->gpa), pa);
		error = NPT_EIO;
		goto out;
	}
	npt_store(&t->hw[i], npt_leaf(s, pa, eprot));
	t->nlive++;
out:
	s->h.unlock(s->ctx);
	return error;
}

uint64_t
npt_root_pa(const struct npt_space *s)
{
	return s->root->pa;
}

uint64_t
npt_generation(const struct npt_space *s)
{
	return __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
}

const uint64_t *
npt_generation_ptr(const struct npt_space *s)
{
	return &s->gen;
}

int
npt_translate(struct npt_space *s, uint64_t gpa, uint64_t *pa, int *prot)
{
	const struct npt_table *t;
	uint64_t e = 0;
	int level, error = 0;

	if (gpa < s->lo || gpa >= s->hi)
		return NPT_EFAULT;

	s->h.lock(s->ctx);
	t = s->root;
	for (level = NPT_LEVELS; level >= 1; level--) {
		e = npt_load(&t->hw[npt_index(gpa, level)]);
		if (!npt_present(s, e)) {
			error = NPT_EFAULT;
			goto out;
		}
		if (level > 1) {
			/* The shadow must agree with what the hardware follows. */
			t = t->sub[npt_index(gpa, level)];
			if (t == NULL || t->pa != (e & NPT_PA_MASK)) {
				error = NPT_EIO;
				goto out;
			}
		}
	}
	if (pa != NULL)
		*pa = (e & NPT_PA_MASK) | (gpa & NPT_PAGE_MASK);
	if (prot != NULL)
		*prot = npt_decode(s, e);
out:
	s->h.unlock(s->ctx);
	return error;
}
