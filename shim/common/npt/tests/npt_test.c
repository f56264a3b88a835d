// SPDX-License-Identifier: BSD-2-Clause
/*
 * nvmm-port: portable nested page tables for NVMM ports; the userland harness of nvmm_npt.c.
 *
 * The hooks simulate a machine: "physical" frames are aligned_alloc'ed pages with fake physical
 * addresses (never reused, high bits set to exercise the whole PA field), page tables are found
 * from their PA through the frame table, memory objects are arrays of lazily allocated frames
 * with per-page reference counts.  The harness walks the tables itself, as the hardware would,
 * with its own reading of the entry formats, independently of npt_translate().
 *
 * A model of what CPUs may have cached checks the invalidation protocol: every table and page
 * that becomes reachable may be cached, invalidated() resets the cache to what is reachable at
 * that moment, and a page whose last reference is dropped or a table that is freed must not be
 * cached any more.
 *
 * Usage: npt_test --list | npt_test SCENARIO [SEED [STEPS]].  Prints "PASS SCENARIO" and exits 0,
 * or prints the failed check and exits 1.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nvmm_npt.h"

/* -------------------------------------------------------------------------------------------- */
/* Checks                                                                                        */
/* -------------------------------------------------------------------------------------------- */

static const char *cur_scenario = "?";
static unsigned long cur_step;

static void __attribute__((noreturn))
fail(const char *file, int line, const char *msg)
{
	fprintf(stderr, "FAIL %s (step %lu): %s:%d: %s\n", cur_scenario, cur_step, file, line, msg);
	fflush(stderr);
	exit(1);
}

#define CHECK(c) do { if (!(c)) fail(__FILE__, __LINE__, "CHECK(" #c ")"); } while (0)
#define CHECK_EQ(a, b) do {							\
	uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);			\
	if (a_ != b_) {								\
		char m_[512];							\
		snprintf(m_, sizeof(m_), "%s == %s: 0x%llx != 0x%llx", #a, #b,	\
		    (unsigned long long)a_, (unsigned long long)b_);		\
		fail(__FILE__, __LINE__, m_);					\
	}									\
} while (0)

/* -------------------------------------------------------------------------------------------- */
/* Simulated physical memory                                                                     */
/* -------------------------------------------------------------------------------------------- */

#define PG		4096ULL
#define PA_BASE		0x000ff00000000000ULL	/* bits 51:44 set: the whole PA field is used */
#define PA_FIELD	0x000ffffffffff000ULL

enum { F_DEAD = 0, F_TABLE, F_PAGE };

struct frame {
	void *va;
	int kind;
	int refs;		/* F_PAGE: getpage references */
	int cached;		/* may be in some CPU's TLB or paging-structure cache */
};

static struct frame *frames;	/* index: pfn; pfn 0 unused */
static size_t nframes = 1, capframes;

static uint64_t
frame_new(int kind, void **va)
{
	void *p;

	if (nframes >= capframes) {
		capframes = capframes ? capframes * 2 : 1024;
		frames = realloc(frames, capframes * sizeof(*frames));
		CHECK(frames != NULL);
	}
	p = aligned_alloc(PG, PG);
	CHECK(p != NULL);
	memset(p, 0, PG);
	frames[nframes].va = p;
	frames[nframes].kind = kind;
	frames[nframes].refs = 0;
	frames[nframes].cached = kind == F_TABLE;	/* pages: when got (h_obj_getpage) */
	*va = p;
	return PA_BASE + ((uint64_t)nframes++ << 12);
}

static struct frame *
frame_of(uint64_t pa)
{
	uint64_t pfn;

	CHECK((pa & (PG - 1)) == 0);
	CHECK(pa > PA_BASE);
	pfn = (pa - PA_BASE) >> 12;
	CHECK(pfn < nframes);
	CHECK(frames[pfn].kind != F_DEAD);
	return &frames[pfn];
}

static void
frame_kill(struct frame *f)
{
	free(f->va);
	f->va = NULL;
	f->kind = F_DEAD;
}

/* -------------------------------------------------------------------------------------------- */
/* Environment and hooks                                                                         */
/* -------------------------------------------------------------------------------------------- */

#define MAXOBJ 8

struct obj {
	size_t npages;
	uint64_t *pa;		/* 0: not allocated yet */
	int refs;		/* obj_ref - obj_rel */
};

struct env {
	struct npt_space *s;
	enum npt_format fmt;
	unsigned int flags, memtype;
	int locked;
	int destroying;
	struct obj objs[MAXOBJ];
	int nobjs;
	/* counters */
	long mem_allocs, mem_frees, mem_live_bytes;
	long tables_alloc, tables_free, tables_live;
	long getpages, putpages, getpage_writes;
	long objrefs, objrels;
	long invalidations;
	/* fault injection */
	long fail_at;		/* > 0: the fail_at-th allocation attempt from now fails */
	unsigned long fail_rate;/* > 0: each attempt fails with probability 1/fail_rate */
	long injected;
	int getpage_error;	/* > 0: obj_getpage returns it */
	uint64_t getpage_badpa;	/* != 0: obj_getpage returns this PA instead */
};

static struct env E;
static uint64_t rng_state = 1;

static uint64_t
rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t
rnd(uint64_t n)
{
	return rng() % n;
}

static int
inject(void)
{
	if (E.fail_at > 0 && --E.fail_at == 0) {
		E.injected++;
		return 1;
	}
	if (E.fail_rate > 0 && rnd(E.fail_rate) == 0) {
		E.injected++;
		return 1;
	}
	return 0;
}

struct memhdr {
	size_t size;
	uint64_t magic;
};
#define MEM_MAGIC 0x6e70746d656d3031ULL

static void *
h_mem_alloc(void *ctx, size_t size)
{
	struct memhdr *h;

	CHECK(ctx == &E);
	CHECK(size > 0);
	if (inject())
		return NULL;
	h = malloc(sizeof(*h) + size);
	CHECK(h != NULL);
	memset(h + 1, 0xa5, size);	/* not zeroed: the contract says so */
	h->size = size;
	h->magic = MEM_MAGIC;
	E.mem_allocs++;
	E.mem_live_bytes += (long)size;
	return h + 1;
}

static void
h_mem_free(void *ctx, void *ptr, size_t size)
{
	struct memhdr *h = (struct memhdr *)ptr - 1;

	CHECK(ctx == &E);
	CHECK(h->magic == MEM_MAGIC);
	CHECK_EQ(h->size, size);
	h->magic = 0;
	E.mem_frees++;
	E.mem_live_bytes -= (long)size;
	free(h);
}

static void *
h_page_zalloc(void *ctx, uint64_t *pa)
{
	void *va;

	CHECK(ctx == &E);
	if (inject())
		return NULL;
	*pa = frame_new(F_TABLE, &va);
	E.tables_alloc++;
	E.tables_live++;
	return va;
}

static void
h_page_free(void *ctx, void *va, uint64_t pa)
{
	struct frame *f = frame_of(pa);

	CHECK(ctx == &E);
	CHECK(f->kind == F_TABLE);
	CHECK(f->va == va);
	if (!E.destroying)
		CHECK(!f->cached);	/* freed only after the invalidation */
	frame_kill(f);
	E.tables_free++;
	E.tables_live--;
}

static int
h_obj_getpage(void *ctx, void *obj, uint64_t offset, bool write, uint64_t *pa)
{
	struct obj *o = obj;
	struct frame *f;
	void *va;
	size_t pg;

	CHECK(ctx == &E);
	CHECK(E.locked);
	CHECK(o >= E.objs && o < E.objs + E.nobjs);
	CHECK((offset & (PG - 1)) == 0);
	pg = offset / PG;
	CHECK(pg < o->npages);
	if (E.getpage_error)
		return E.getpage_error;
	if (inject())
		return ENOMEM;
	if (o->pa[pg] == 0)
		o->pa[pg] = frame_new(F_PAGE, &va);
	f = frame_of(o->pa[pg]);
	f->refs++;
	if (!E.getpage_badpa)
		f->cached = 1;	/* about to be entered: some CPU may cache it from now on */
	E.getpages++;
	if (write)
		E.getpage_writes++;
	*pa = E.getpage_badpa ? E.getpage_badpa : o->pa[pg];
	return 0;
}

static void
h_obj_putpage(void *ctx, void *obj, uint64_t offset, uint64_t pa)
{
	struct obj *o = obj;
	struct frame *f;
	size_t pg;

	CHECK(ctx == &E);
	CHECK(E.locked);
	CHECK(o >= E.objs && o < E.objs + E.nobjs);
	CHECK((offset & (PG - 1)) == 0);
	pg = offset / PG;
	CHECK(pg < o->npages);
	CHECK(o->pa[pg] != 0);
	if (E.getpage_badpa) {
		CHECK_EQ(pa, E.getpage_badpa);
	} else {
		CHECK_EQ(pa, o->pa[pg]);
	}
	f = frame_of(o->pa[pg]);
	CHECK(f->refs > 0);
	f->refs--;
	/* Once the last reference goes the OS may reuse the page: nobody may still cache it. */
	if (f->refs == 0 && !E.destroying)
		CHECK(!f->cached);
	E.putpages++;
}

static void
h_obj_ref(void *ctx, void *obj)
{
	struct obj *o = obj;

	CHECK(ctx == &E);
	CHECK(E.locked);
	CHECK(o >= E.objs && o < E.objs + E.nobjs);
	o->refs++;
	E.objrefs++;
}

static void
h_obj_rel(void *ctx, void *obj)
{
	struct obj *o = obj;

	CHECK(ctx == &E);
	CHECK(E.locked);
	CHECK(o >= E.objs && o < E.objs + E.nobjs);
	CHECK(o->refs > 0);
	o->refs--;
	E.objrels++;
}

static void
h_lock(void *ctx)
{
	CHECK(ctx == &E);
	CHECK(!E.locked);
	E.locked = 1;
}

static void
h_unlock(void *ctx)
{
	CHECK(ctx == &E);
	CHECK(E.locked);
	E.locked = 0;
}

static void mark_cached(void);

static void
h_invalidated(void *ctx)
{
	CHECK(ctx == &E);
	CHECK(E.locked);
	E.invalidations++;
	/* The generation moved (once per call) before the CPUs were told. */
	CHECK_EQ(npt_generation(E.s), 1 + (uint64_t)E.invalidations);
	/* Every CPU left guest mode and will flush: only what is reachable now can be cached. */
	mark_cached();
}

static const struct npt_hooks hooks = {
	.mem_alloc = h_mem_alloc,
	.mem_free = h_mem_free,
	.page_zalloc = h_page_zalloc,
	.page_free = h_page_free,
	.obj_getpage = h_obj_getpage,
	.obj_putpage = h_obj_putpage,
	.obj_ref = h_obj_ref,
	.obj_rel = h_obj_rel,
	.lock = h_lock,
	.unlock = h_unlock,
	.invalidated = h_invalidated,
};

/* -------------------------------------------------------------------------------------------- */
/* The hardware's view: an independent reading of the entry formats                             */
/* -------------------------------------------------------------------------------------------- */

/* AMD APM Vol. 2 5.4.1 */
#define A_P	(1ULL << 0)
#define A_RW	(1ULL << 1)
#define A_US	(1ULL << 2)
#define A_NX	(1ULL << 63)
/* Intel SDM Vol. 3C Tables 29-1..29-6 */
#define I_R	(1ULL << 0)
#define I_W	(1ULL << 1)
#define I_X	(1ULL << 2)
#define I_IPAT	(1ULL << 6)
#define I_A	(1ULL << 8)
#define I_D	(1ULL << 9)

static int
hw_present(uint64_t e)
{
	return E.fmt == NPT_FORMAT_EPT ? (e & 7) != 0 : (e & A_P) != 0;
}

static uint64_t *
hw_table(uint64_t pa)
{
	struct frame *f = frame_of(pa);

	CHECK(f->kind == F_TABLE);
	return f->va;
}

static void
hw_check_nonleaf(uint64_t e)
{
	struct frame *f = frame_of(e & PA_FIELD);

	CHECK(f->kind == F_TABLE);
	if (E.fmt == NPT_FORMAT_EPT)
		CHECK_EQ(e & ~PA_FIELD, 7 | ((E.flags & NPT_EPT_AD) ? I_A : 0));
	else
		CHECK_EQ(e & ~PA_FIELD, A_P | A_RW | A_US);
}

/* Check a present leaf and return the protection it grants. */
static int
hw_check_leaf(uint64_t e)
{
	struct frame *f = frame_of(e & PA_FIELD);
	uint64_t want;
	int prot;

	CHECK(f->kind == F_PAGE);
	CHECK(f->refs > 0);
	if (E.fmt == NPT_FORMAT_EPT) {
		prot = (int)(e & 7);
		CHECK(!((e & I_W) && !(e & I_R)));	/* misconfiguration */
		if ((e & I_X) && !(e & I_R))
			CHECK(E.flags & NPT_EPT_XONLY);
		want = (uint64_t)prot | ((uint64_t)E.memtype << 3);
		if (E.flags & NPT_EPT_IPAT)
			want |= I_IPAT;
		if (E.flags & NPT_EPT_AD)
			want |= I_A | ((e & I_W) ? I_D : 0);
		CHECK_EQ(e & ~PA_FIELD, want);
	} else {
		CHECK(e & A_US);
		prot = NPT_PROT_READ | ((e & A_RW) ? NPT_PROT_WRITE : 0) |
		    ((e & A_NX) ? 0 : NPT_PROT_EXEC);
		CHECK_EQ(e & ~PA_FIELD & ~A_RW & ~A_NX, A_P | A_US);
	}
	return prot;
}

/* Raw entry at @level for @gpa (0 if the walk stops above it). */
static uint64_t
hw_entry(uint64_t gpa, int level)
{
	uint64_t tpa = npt_root_pa(E.s), e = 0;
	int l;

	for (l = 4; l >= level; l--) {
		e = hw_table(tpa)[(gpa >> (12 + 9 * (l - 1))) & 511];
		if (l == level)
			return e;
		if (!hw_present(e))
			return 0;
		hw_check_nonleaf(e);
		tpa = e & PA_FIELD;
	}
	return e;
}

/* Translate as the hardware would: 0 and pa/prot, or -1 if not present. */
static int
hw_translate(uint64_t gpa, uint64_t *pa, int *prot)
{
	uint64_t e = hw_entry(gpa, 1);

	if (!hw_present(e))
		return -1;
	*prot = hw_check_leaf(e);
	*pa = (e & PA_FIELD) | (gpa & (PG - 1));
	return 0;
}

static void
mark_tree(uint64_t tpa, int level)
{
	uint64_t *t = hw_table(tpa), e;
	int i;

	frame_of(tpa)->cached = 1;
	for (i = 0; i < 512; i++) {
		e = t[i];
		if (!hw_present(e))
			continue;
		if (level > 1) {
			hw_check_nonleaf(e);
			mark_tree(e & PA_FIELD, level - 1);
		} else {
			hw_check_leaf(e);
			frame_of(e & PA_FIELD)->cached = 1;
		}
	}
}

static void
mark_cached(void)
{
	size_t i;

	for (i = 1; i < nframes; i++)
		frames[i].cached = 0;
	mark_tree(npt_root_pa(E.s), 4);
}

/* Present leaves reachable from the root. */
static long
count_tree(uint64_t tpa, int level, long *tables)
{
	uint64_t *t = hw_table(tpa), e;
	long n = 0;
	int i;

	(*tables)++;
	for (i = 0; i < 512; i++) {
		e = t[i];
		if (!hw_present(e))
			continue;
		if (level > 1)
			n += count_tree(e & PA_FIELD, level - 1, tables);
		else
			n++;
	}
	return n;
}

/* -------------------------------------------------------------------------------------------- */
/* Set-up and tear-down                                                                          */
/* -------------------------------------------------------------------------------------------- */

static void
env_init(enum npt_format fmt, unsigned int flags, unsigned int memtype, uint64_t lo, uint64_t hi)
{
	memset(&E, 0, sizeof(E));
	E.s = npt_create(lo, hi, &hooks, &E);
	CHECK(E.s != NULL);
	CHECK_EQ(E.tables_live, 1);
	CHECK_EQ(npt_generation(E.s), 1);
	CHECK_EQ(npt_root_pa(E.s) & (PG - 1), 0);
	if (fmt != NPT_FORMAT_NPT || flags != 0 || memtype != 0)
		CHECK_EQ(npt_set_format(E.s, fmt, flags, memtype), 0);
	E.fmt = fmt;
	E.flags = flags;
	E.memtype = memtype;
}

static struct obj *
obj_new(size_t npages)
{
	struct obj *o;

	CHECK(E.nobjs < MAXOBJ);
	o = &E.objs[E.nobjs++];
	o->npages = npages;
	o->pa = calloc(npages, sizeof(*o->pa));
	CHECK(o->pa != NULL);
	o->refs = 0;
	return o;
}

static int
page_refs(struct obj *o, size_t pg)
{
	return o->pa[pg] ? frame_of(o->pa[pg])->refs : 0;
}

/* Destroy the space and check that everything taken was given back. */
static void
env_fini(void)
{
	size_t pg;
	int i;

	E.destroying = 1;
	npt_destroy(E.s);
	E.s = NULL;
	CHECK(!E.locked);
	CHECK_EQ(E.tables_live, 0);
	CHECK_EQ(E.tables_alloc, E.tables_free);
	CHECK_EQ(E.getpages, E.putpages);
	CHECK_EQ(E.objrefs, E.objrels);
	CHECK_EQ(E.mem_allocs, E.mem_frees);
	CHECK_EQ(E.mem_live_bytes, 0);
	for (i = 0; i < E.nobjs; i++) {
		CHECK_EQ(E.objs[i].refs, 0);
		for (pg = 0; pg < E.objs[i].npages; pg++) {
			if (E.objs[i].pa[pg] == 0)
				continue;
			CHECK_EQ(page_refs(&E.objs[i], pg), 0);
			frame_kill(frame_of(E.objs[i].pa[pg]));
		}
		free(E.objs[i].pa);
	}
	E.nobjs = 0;
}

static void
frames_fini(void)
{
	size_t i;

	for (i = 1; i < nframes; i++)
		CHECK(frames[i].kind == F_DEAD);
	free(frames);
	frames = NULL;
	nframes = 1;
	capframes = 0;
}

#define R	NPT_PROT_READ
#define W	NPT_PROT_WRITE
#define X	NPT_PROT_EXEC
#define GiB	(1ULL << 30)

/* -------------------------------------------------------------------------------------------- */
/* Directed scenarios                                                                            */
/* -------------------------------------------------------------------------------------------- */

static void
t_create_destroy(void)
{
	struct npt_space *s;
	long at;

	env_init(NPT_FORMAT_NPT, 0, 0, 0, 4 * GiB);
	env_fini();

	/* Bad arguments and allocation failures: NULL, nothing leaked. */
	memset(&E, 0, sizeof(E));
	CHECK(npt_create(1, 4 * GiB, &hooks, &E) == NULL);
	CHECK(npt_create(0, 4 * GiB + 1, &hooks, &E) == NULL);
	CHECK(npt_create(GiB, GiB, &hooks, &E) == NULL);
	CHECK(npt_create(0, NPT_GPA_LIMIT + PG, &hooks, &E) == NULL);
	CHECK(npt_create(0, 4 * GiB, NULL, &E) == NULL);
	for (at = 1; at <= 4; at++) {	/* space, table, child pointers, root page */
		E.fail_at = at;
		s = npt_create(0, 4 * GiB, &hooks, &E);
		CHECK(s == NULL);
		CHECK_EQ(E.fail_at, 0);
		CHECK_EQ(E.mem_live_bytes, 0);
		CHECK_EQ(E.tables_live, 0);
	}
	CHECK_EQ(E.injected, 4);
	s = npt_create(0, NPT_GPA_LIMIT, &hooks, &E);
	CHECK(s != NULL);
	E.s = s;
	env_fini();
}

static void
t_fault_bits_npt(void)
{
	struct obj *o;
	uint64_t gpa = 0x40000000, pa, e;
	int prot;

	env_init(NPT_FORMAT_NPT, 0, 0, 0, 64 * GiB);
	o = obj_new(16);
	CHECK_EQ(npt_map(E.s, gpa, PG, o, 0, R), 0);
	CHECK_EQ(npt_map(E.s, gpa + PG, PG, o, PG, R | W), 0);
	CHECK_EQ(npt_map(E.s, gpa + 2 * PG, PG, o, 2 * PG, R | W | X), 0);
	CHECK_EQ(npt_map(E.s, gpa + 3 * PG, PG, o, 3 * PG, R | X), 0);
	CHECK_EQ(npt_map(E.s, gpa + 4 * PG, PG, o, 4 * PG, X), 0);
	CHECK_EQ(E.getpages, 0);	/* nothing populated by map */
	CHECK_EQ(E.tables_live, 1);

	CHECK_EQ(npt_fault(E.s, gpa + 0x123, R), 0);
	CHECK_EQ(E.getpage_writes, 0);
	CHECK_EQ(hw_entry(gpa, 1), o->pa[0] | A_P | A_US | A_NX);
	/* Non-leaf entries: P|RW|US and the table's PA. */
	CHECK_EQ(hw_entry(gpa, 4) & ~PA_FIELD, A_P | A_RW | A_US);
	CHECK_EQ(hw_entry(gpa, 3) & ~PA_FIELD, A_P | A_RW | A_US);
	CHECK_EQ(hw_entry(gpa, 2) & ~PA_FIELD, A_P | A_RW | A_US);
	CHECK_EQ(E.tables_live, 4);

	CHECK_EQ(npt_fault(E.s, gpa + PG, W), 0);
	CHECK_EQ(E.getpage_writes, 1);	/* writable mapping: page asked for writing */
	CHECK_EQ(hw_entry(gpa + PG, 1), o->pa[1] | A_P | A_RW | A_US | A_NX);
	CHECK_EQ(npt_fault(E.s, gpa + 2 * PG, X), 0);
	CHECK_EQ(hw_entry(gpa + 2 * PG, 1), o->pa[2] | A_P | A_RW | A_US);
	CHECK_EQ(npt_fault(E.s, gpa + 3 * PG, R), 0);
	CHECK_EQ(hw_entry(gpa + 3 * PG, 1), o->pa[3] | A_P | A_US);
	/* Execute-only is readable on NPT: a read is allowed and the leaf has no NX. */
	CHECK_EQ(npt_fault(E.s, gpa + 4 * PG, R), 0);
	CHECK_EQ(hw_entry(gpa + 4 * PG, 1), o->pa[4] | A_P | A_US);
	CHECK_EQ(E.tables_live, 4);

	CHECK_EQ(npt_translate(E.s, gpa + 0x123, &pa, &prot), 0);
	CHECK_EQ(pa, o->pa[0] | 0x123);
	CHECK_EQ(prot, R);
	CHECK_EQ(npt_translate(E.s, gpa + PG, &pa, &prot), 0);
	CHECK_EQ(prot, R | W);
	CHECK_EQ(npt_translate(E.s, gpa + 2 * PG, &pa, &prot), 0);
	CHECK_EQ(prot, R | W | X);
	CHECK_EQ(npt_translate(E.s, gpa + 4 * PG, &pa, &prot), 0);
	CHECK_EQ(prot, R | X);
	CHECK_EQ(npt_translate(E.s, gpa + 5 * PG, &pa, &prot), NPT_EFAULT);

	/* Beyond the mapping's protection. */
	CHECK_EQ(npt_fault(E.s, gpa, W), NPT_EACCES);
	CHECK_EQ(npt_fault(E.s, gpa, X), NPT_EACCES);
	CHECK_EQ(npt_fault(E.s, gpa + PG, X), NPT_EACCES);
	CHECK_EQ(npt_fault(E.s, gpa + 4 * PG, W), NPT_EACCES);
	e = hw_entry(gpa, 1);
	CHECK_EQ(e, o->pa[0] | A_P | A_US | A_NX);	/* unchanged */
	env_fini();
}

static void
ept_case(unsigned int flags, unsigned int memtype)
{
	struct obj *o;
	uint64_t gpa = 0x7fe00000, base, a, d, ipat;
	int prot;
	uint64_t pa;

	env_init(NPT_FORMAT_EPT, flags, memtype, 0, 64 * GiB);
	o = obj_new(8);
	CHECK_EQ(npt_map(E.s, gpa, PG, o, 0, R), 0);
	CHECK_EQ(npt_map(E.s, gpa + PG, PG, o, PG, R | W), 0);
	CHECK_EQ(npt_map(E.s, gpa + 2 * PG, PG, o, 2 * PG, R | W | X), 0);
	CHECK_EQ(npt_map(E.s, gpa + 3 * PG, PG, o, 3 * PG, R | X), 0);
	CHECK_EQ(npt_map(E.s, gpa + 4 * PG, PG, o, 4 * PG, X), 0);

	a = (flags & NPT_EPT_AD) ? I_A : 0;
	d = (flags & NPT_EPT_AD) ? I_D : 0;
	ipat = (flags & NPT_EPT_IPAT) ? I_IPAT : 0;
	base = ((uint64_t)memtype << 3) | ipat | a;

	CHECK_EQ(npt_fault(E.s, gpa, R), 0);
	CHECK_EQ(hw_entry(gpa, 1), o->pa[0] | 0x1 | base);
	CHECK_EQ(hw_entry(gpa, 4) & ~PA_FIELD, 0x7 | a);
	CHECK_EQ(hw_entry(gpa, 3) & ~PA_FIELD, 0x7 | a);
	CHECK_EQ(hw_entry(gpa, 2) & ~PA_FIELD, 0x7 | a);
	CHECK_EQ(npt_fault(E.s, gpa + PG, W), 0);
	CHECK_EQ(hw_entry(gpa + PG, 1), o->pa[1] | 0x3 | base | d);
	CHECK_EQ(npt_fault(E.s, gpa + 2 * PG, X), 0);
	CHECK_EQ(hw_entry(gpa + 2 * PG, 1), o->pa[2] | 0x7 | base | d);
	CHECK_EQ(npt_fault(E.s, gpa + 3 * PG, X), 0);
	CHECK_EQ(hw_entry(gpa + 3 * PG, 1), o->pa[3] | 0x5 | base);
	if (flags & NPT_EPT_XONLY) {
		CHECK_EQ(npt_fault(E.s, gpa + 4 * PG, R), NPT_EACCES);
		CHECK_EQ(npt_fault(E.s, gpa + 4 * PG, X), 0);
		CHECK_EQ(hw_entry(gpa + 4 * PG, 1), o->pa[4] | 0x4 | base);
		CHECK_EQ(npt_translate(E.s, gpa + 4 * PG, &pa, &prot), 0);
		CHECK_EQ(prot, X);
	} else {
		/* Execute-only unsupported: readable too, never R=0 X=1. */
		CHECK_EQ(npt_fault(E.s, gpa + 4 * PG, R), 0);
		CHECK_EQ(hw_entry(gpa + 4 * PG, 1), o->pa[4] | 0x5 | base);
		CHECK_EQ(npt_translate(E.s, gpa + 4 * PG, &pa, &prot), 0);
		CHECK_EQ(prot, R | X);
	}
	CHECK_EQ(npt_fault(E.s, gpa, W), NPT_EACCES);
	CHECK_EQ(npt_fault(E.s, gpa + PG, X), NPT_EACCES);
	CHECK_EQ(npt_translate(E.s, gpa + PG + 8, &pa, &prot), 0);
	CHECK_EQ(pa, o->pa[1] | 8);
	CHECK_EQ(prot, R | W);
	env_fini();
}

static void
t_fault_bits_ept(void)
{
	/* The brief's example: RW leaf = 0x3 | (6 << 3) | PA. */
	ept_case(0, NPT_EPT_MT_WB);
	ept_case(NPT_EPT_AD, NPT_EPT_MT_WB);
	ept_case(NPT_EPT_XONLY, NPT_EPT_MT_WB);
	ept_case(NPT_EPT_IPAT | NPT_EPT_AD | NPT_EPT_XONLY, NPT_EPT_MT_WB);
	ept_case(0, NPT_EPT_MT_UC);
	ept_case(NPT_EPT_IPAT, NPT_EPT_MT_WT);
}

static void
t_fault_errors(void)
{
	struct obj *o;
	uint64_t lo = 16 * PG, hi = 4 * GiB;

	env_init(NPT_FORMAT_NPT, 0, 0, lo, hi);
	o = obj_new(64);
	CHECK_EQ(npt_map(E.s, lo, 4 * PG, o, 0, R | W), 0);
	CHECK_EQ(npt_map(E.s, hi - 4 * PG, 4 * PG, o, 4 * PG, R), 0);
	CHECK_EQ(npt_map(E.s, GiB, 4 * PG, o, 8 * PG, 0), 0);

	CHECK_EQ(npt_fault(E.s, lo + 4 * PG, R), NPT_EFAULT);	/* just past a mapping */
	CHECK_EQ(npt_fault(E.s, 2 * GiB, R), NPT_EFAULT);	/* no mapping */
	CHECK_EQ(npt_fault(E.s, lo - 1, R), NPT_EFAULT);	/* below lo */
	CHECK_EQ(npt_fault(E.s, 0, R), NPT_EFAULT);
	CHECK_EQ(npt_fault(E.s, hi, R), NPT_EFAULT);		/* at hi */
	CHECK_EQ(npt_fault(E.s, ~0ULL, R), NPT_EFAULT);
	CHECK_EQ(npt_fault(E.s, lo, 0), NPT_EINVAL);
	CHECK_EQ(npt_fault(E.s, lo, 8), NPT_EINVAL);
	CHECK_EQ(npt_fault(E.s, lo, X), NPT_EACCES);
	CHECK_EQ(npt_fault(E.s, hi - PG, W), NPT_EACCES);
	CHECK_EQ(npt_fault(E.s, GiB, R), NPT_EACCES);		/* prot 0 mapping */
	CHECK_EQ(E.getpages, 0);
	CHECK_EQ(E.tables_live, 1);				/* no error built anything */
	CHECK_EQ(npt_fault(E.s, hi - 1, R), 0);			/* last byte of the space */
	CHECK_EQ(npt_fault(E.s, lo, R | W), 0);

	/* Errors of obj_getpage are passed up; a page with an impossible PA is refused. */
	E.getpage_error = 99;
	CHECK_EQ(npt_fault(E.s, lo + PG, R), 99);
	E.getpage_error = 0;
	E.getpage_badpa = 1ULL << 52;
	CHECK_EQ(npt_fault(E.s, lo + 2 * PG, R), NPT_EIO);
	E.getpage_badpa = 0;
	CHECK_EQ(E.getpages - E.putpages, 2);
	CHECK_EQ(npt_translate(E.s, lo + PG, NULL, NULL), NPT_EFAULT);
	CHECK_EQ(npt_translate(E.s, lo + 2 * PG, NULL, NULL), NPT_EFAULT);
	CHECK_EQ(npt_fault(E.s, lo + 2 * PG, R), 0);
	env_fini();
}

static void
t_fault_idempotent(void)
{
	struct obj *o;
	uint64_t gpa = 0x200000, e;

	env_init(NPT_FORMAT_EPT, 0, NPT_EPT_MT_WB, 0, 4 * GiB);
	o = obj_new(4);
	CHECK_EQ(npt_map(E.s, gpa, 4 * PG, o, 0, R | W | X), 0);
	CHECK_EQ(npt_fault(E.s, gpa + 8, R), 0);
	e = hw_entry(gpa, 1);
	CHECK_EQ(npt_fault(E.s, gpa + 16, W), 0);
	CHECK_EQ(npt_fault(E.s, gpa, X), 0);
	CHECK_EQ(npt_fault(E.s, gpa, R), 0);
	CHECK_EQ(hw_entry(gpa, 1), e);
	CHECK_EQ(E.getpages, 1);
	CHECK_EQ(page_refs(o, 0), 1);
	CHECK_EQ(E.tables_live, 4);
	CHECK_EQ(E.invalidations, 0);
	env_fini();
}

static void
t_obj_offset(void)
{
	struct obj *o;
	uint64_t gpa = 0x100000, pa;
	int prot;
	size_t pg;

	env_init(NPT_FORMAT_NPT, 0, 0, 0, 4 * GiB);
	o = obj_new(16);
	CHECK_EQ(npt_map(E.s, gpa, 4 * PG, o, 0x3000, R | W), 0);
	CHECK_EQ(npt_fault(E.s, gpa + 0x1000, R), 0);
	CHECK(o->pa[4] != 0);
	for (pg = 0; pg < o->npages; pg++)
		CHECK(pg == 4 ? page_refs(o, pg) == 1 : o->pa[pg] == 0);
	CHECK_EQ(npt_translate(E.s, gpa + 0x1abc, &pa, &prot), 0);
	CHECK_EQ(pa, o->pa[4] | 0xabc);
	CHECK_EQ(prot, R | W);
	/* Last page of the mapping: object page 6. */
	CHECK_EQ(npt_fault(E.s, gpa + 0x3fff, W), 0);
	CHECK_EQ(page_refs(o, 6), 1);
	/* The same object range mapped twice: the same physical pages. */
	CHECK_EQ(npt_map(E.s, 2 * GiB, 4 * PG, o, 0x3000, R), 0);
	CHECK_EQ(npt_fault(E.s, 2 * GiB + 0x1000, R), 0);
	CHECK_EQ(hw_entry(2 * GiB + 0x1000, 1) & PA_FIELD, o->pa[4]);
	CHECK_EQ(page_refs(o, 4), 2);
	env_fini();
}

static void
t_unmap_split(void)
{
	struct obj *o;
	uint64_t gpa = 0x10000000, pa, pa10;
	long gets;
	int i, prot;

	env_init(NPT_FORMAT_EPT, 0, NPT_EPT_MT_WB, 0, 4 * GiB);
	o = obj_new(32);
	CHECK_EQ(npt_map(E.s, gpa, 16 * PG, o, 8 * PG, R | W), 0);
	CHECK_EQ(o->refs, 1);
	for (i = 0; i < 16; i++)
		CHECK_EQ(npt_fault(E.s, gpa + (uint64_t)i * PG, R), 0);
	pa10 = o->pa[8 + 10];
	gets = E.getpages;

	CHECK_EQ(npt_unmap(E.s, gpa + 4 * PG, gpa + 8 * PG), 0);
	CHECK_EQ(npt_generation(E.s), 2);
	CHECK_EQ(E.invalidations, 1);
	CHECK_EQ(o->refs, 2);		/* split: each half holds a reference */
	CHECK_EQ(E.putpages, 4);
	for (i = 0; i < 16; i++) {
		int gone = i >= 4 && i < 8;

		CHECK_EQ(page_refs(o, 8 + (size_t)i), gone ? 0 : 1);
		CHECK_EQ(hw_present(hw_entry(gpa + (uint64_t)i * PG, 1)), !gone);
		CHECK_EQ(npt_translate(E.s, gpa + (uint64_t)i * PG, NULL, NULL),
		    gone ? NPT_EFAULT : 0);
		CHECK_EQ(npt_fault(E.s, gpa + (uint64_t)i * PG, R), gone ? NPT_EFAULT : 0);
	}
	CHECK_EQ(E.getpages, gets);	/* nothing re-fetched */
	CHECK_EQ(npt_translate(E.s, gpa + 10 * PG, &pa, &prot), 0);
	CHECK_EQ(pa, pa10);
	CHECK_EQ(prot, R | W);
	CHECK_EQ(E.tables_live, 4);

	/* The right half kept its offset: re-map the hole with another part of the object. */
	CHECK_EQ(npt_map(E.s, gpa + 4 * PG, 4 * PG, o, 0, R), 0);
	CHECK_EQ(npt_map(E.s, gpa + 3 * PG, 2 * PG, o, 0, R), NPT_EEXIST);
	CHECK_EQ(npt_fault(E.s, gpa + 5 * PG, R), 0);
	CHECK_EQ(hw_entry(gpa + 5 * PG, 1) & PA_FIELD, o->pa[1]);
	CHECK_EQ(o->refs, 3);

	/* Trim the head of one mapping and the tail of another in one call. */
	CHECK_EQ(npt_unmap(E.s, gpa + 2 * PG, gpa + 6 * PG), 0);
	CHECK_EQ(E.invalidations, 2);
	CHECK_EQ(npt_generation(E.s), 3);
	CHECK_EQ(o->refs, 3);
	CHECK_EQ(npt_fault(E.s, gpa + 1 * PG, R), 0);
	CHECK_EQ(npt_fault(E.s, gpa + 2 * PG, R), NPT_EFAULT);
	CHECK_EQ(npt_fault(E.s, gpa + 5 * PG, R), NPT_EFAULT);
	CHECK_EQ(npt_fault(E.s, gpa + 6 * PG, R), 0);
	CHECK_EQ(hw_entry(gpa + 6 * PG, 1) & PA_FIELD, o->pa[2]);

	/* Everything: the last references go, and the tables with them (the root stays). */
	CHECK_EQ(npt_unmap(E.s, 0, 4 * GiB), 0);
	CHECK_EQ(E.invalidations, 3);
	CHECK_EQ(o->refs, 0);
	CHECK_EQ(E.getpages, E.putpages);
	CHECK_EQ(E.tables_live, 1);
	env_fini();
}

static void
t_unmap_unfaulted(void)
{
	struct obj *o;
	uint64_t gpa = 0x300000;

	env_init(NPT_FORMAT_NPT, 0, 0, 0, 4 * GiB);
	o = obj_new(32);
	CHECK_EQ(npt_map(E.s, gpa, 8 * PG, o, 0, R | W), 0);
	CHECK_EQ(npt_map(E.s, gpa + 8 * PG, 8 * PG, o, 8 * PG, R | W), 0);
	CHECK_EQ(o->refs, 2);
	/* Never faulted: removed, no generation move, no invalidation. */
	CHECK_EQ(npt_unmap(E.s, gpa + 8 * PG, gpa + 16 * PG), 0);
	CHECK_EQ(npt_generation(E.s), 1);
	CHECK_EQ(E.invalidations, 0);
	CHECK_EQ(o->refs, 1);
	CHECK_EQ(npt_fault(E.s, gpa + 8 * PG, R), NPT_EFAULT);
	/* A neighbour in the same page table faulted, the unmapped part not: still nothing. */
	CHECK_EQ(npt_map(E.s, gpa + 8 * PG, 8 * PG, o, 8 * PG, R | W), 0);
	CHECK_EQ(npt_fault(E.s, gpa, W), 0);
	CHECK_EQ(npt_unmap(E.s, gpa + 8 * PG, gpa + 16 * PG), 0);
	CHECK_EQ(npt_unmap(E.s, gpa + PG, gpa + 8 * PG), 0);
	CHECK_EQ(E.invalidations, 0);
	CHECK_EQ(npt_generation(E.s), 1);
	CHECK_EQ(E.tables_live, 4);
	CHECK_EQ(npt_fault(E.s, gpa, R), 0);
	/* A hole: nothing at all. */
	CHECK_EQ(npt_unmap(E.s, GiB, 2 * GiB), 0);
	CHECK_EQ(E.invalidations, 0);
	/* The faulted page: one invalidation, and the emptied tables are freed. */
	CHECK_EQ(npt_unmap(E.s, gpa, gpa + PG), 0);
	CHECK_EQ(E.invalidations, 1);
	CHECK_EQ(npt_generation(E.s), 2);
	CHECK_EQ(E.tables_live, 1);
	CHECK_EQ(o->refs, 0);
	env_fini();
}

static void
t_unmap_tables(void)
{
	struct obj *o;
	uint64_t a = 0x1ff000, b = 0x200000, far = 0x8000000000ULL;	/* PT, PD and PML4 boundaries */
	long tables;

	env_init(NPT_FORMAT_NPT, 0, 0, 0, NPT_GPA_LIMIT);
	o = obj_new(8);
	CHECK_EQ(npt_map(E.s, a, 2 * PG, o, 0, R), 0);
	CHECK_EQ(npt_map(E.s, far - PG, 2 * PG, o, 2 * PG, R), 0);
	CHECK_EQ(npt_map(E.s, NPT_GPA_LIMIT - PG, PG, o, 4 * PG, R), 0);
	CHECK_EQ(npt_fault(E.s, a, R), 0);
	CHECK_EQ(npt_fault(E.s, b, R), 0);
	CHECK_EQ(E.tables_live, 5);	/* root, PDPT, PD, 2 PT */
	CHECK_EQ(npt_fault(E.s, far - PG, R), 0);
	CHECK_EQ(npt_fault(E.s, far, R), 0);
	CHECK_EQ(npt_fault(E.s, NPT_GPA_LIMIT - 1, R), 0);
	CHECK_EQ(E.tables_live, 5 + 2 + 3 + 3);
	tables = 0;
	CHECK_EQ(count_tree(npt_root_pa(E.s), 4, &tables), 5);
	CHECK_EQ(tables, E.tables_live);

	/* One PT emptied: it alone goes. */
	CHECK_EQ(npt_unmap(E.s, b, b + PG), 0);
	CHECK_EQ(E.tables_live, 12);
	CHECK_EQ(E.invalidations, 1);
	CHECK_EQ(hw_entry(b, 2), 0);
	/* Across the 512 GiB boundary: two PML4 slots' worth of PDPT/PD/PT. */
	CHECK_EQ(npt_unmap(E.s, far - PG, far + PG), 0);
	CHECK_EQ(E.tables_live, 7);
	CHECK_EQ(E.invalidations, 2);
	CHECK_EQ(npt_fault(E.s, a, R), 0);		/* still there */
	CHECK_EQ(npt_fault(E.s, NPT_GPA_LIMIT - PG, R), 0);
	CHECK_EQ(npt_unmap(E.s, 0, NPT_GPA_LIMIT), 0);
	CHECK_EQ(E.tables_live, 1);
	CHECK_EQ(E.invalidations, 3);
	tables = 0;
	CHECK_EQ(count_tree(npt_root_pa(E.s), 4, &tables), 0);
	CHECK_EQ(tables, 1);
	env_fini();
}

static void
t_map_errors(void)
{
	struct obj *o;
	uint64_t lo = GiB, hi = 2 * GiB, g = GiB + 0x100000;

	env_init(NPT_FORMAT_NPT, 0, 0, lo, hi);
	o = obj_new(64);
	CHECK_EQ(npt_map(E.s, g, 8 * PG, o, 0, R | W), 0);
	/* Overlaps: same, front, back, inside, around. */
	CHECK_EQ(npt_map(E.s, g, 8 * PG, o, 0, R), NPT_EEXIST);
	CHECK_EQ(npt_map(E.s, g - PG, 2 * PG, o, 0, R), NPT_EEXIST);
	CHECK_EQ(npt_map(E.s, g + 7 * PG, 2 * PG, o, 0, R), NPT_EEXIST);
	CHECK_EQ(npt_map(E.s, g + 2 * PG, PG, o, 0, R), NPT_EEXIST);
	CHECK_EQ(npt_map(E.s, g - PG, 10 * PG, o, 0, R), NPT_EEXIST);
	/* Adjacent is fine. */
	CHECK_EQ(npt_map(E.s, g - PG, PG, o, 0, R), 0);
	CHECK_EQ(npt_map(E.s, g + 8 * PG, PG, o, 0, R), 0);
	/* Outside [lo, hi). */
	CHECK_EQ(npt_map(E.s, lo - PG, PG, o, 0, R), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, lo - PG, 2 * PG, o, 0, R), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, hi, PG, o, 0, R), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, hi - PG, 2 * PG, o, 0, R), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, hi - PG, ~0ULL & ~(PG - 1), o, 0, R), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, hi - PG, PG, o, 0, R), 0);
	CHECK_EQ(npt_map(E.s, lo, PG, o, 0, R), 0);
	/* Alignment, size, protection, offset overflow. */
	CHECK_EQ(npt_map(E.s, lo + 0x800000 + 1, PG, o, 0, R), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, lo + 0x800000, PG + 1, o, 0, R), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, lo + 0x800000, PG, o, 8, R), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, lo + 0x800000, 0, o, 0, R), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, lo + 0x800000, PG, o, 0, W), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, lo + 0x800000, PG, o, 0, W | X), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, lo + 0x800000, PG, o, 0, 8), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, lo + 0x800000, PG, o, 0, -1), NPT_EINVAL);
	CHECK_EQ(npt_map(E.s, lo + 0x800000, 2 * PG, o, ~0ULL & ~(PG - 1), R), NPT_EINVAL);
	CHECK_EQ(o->refs, 5);
	/* Unmap arguments. */
	CHECK_EQ(npt_unmap(E.s, g + 1, g + PG), NPT_EINVAL);
	CHECK_EQ(npt_unmap(E.s, g, g + PG + 1), NPT_EINVAL);
	CHECK_EQ(npt_unmap(E.s, g, g), NPT_EINVAL);
	CHECK_EQ(npt_unmap(E.s, g + PG, g), NPT_EINVAL);
	CHECK_EQ(npt_unmap(E.s, lo - PG, g), NPT_EINVAL);
	CHECK_EQ(npt_unmap(E.s, g, hi + PG), NPT_EINVAL);
	CHECK_EQ(o->refs, 5);
	CHECK_EQ(npt_unmap(E.s, lo, hi), 0);
	CHECK_EQ(o->refs, 0);
	env_fini();
}

static void
t_set_format(void)
{
	struct obj *o;
	uint64_t root;

	env_init(NPT_FORMAT_NPT, 0, 0, 0, 4 * GiB);
	o = obj_new(4);
	root = npt_root_pa(E.s);
	CHECK_EQ(npt_set_format(E.s, NPT_FORMAT_NPT, NPT_EPT_AD, 0), NPT_EINVAL);
	CHECK_EQ(npt_set_format(E.s, NPT_FORMAT_NPT, 0, NPT_EPT_MT_WB), NPT_EINVAL);
	CHECK_EQ(npt_set_format(E.s, NPT_FORMAT_EPT, 0x80, NPT_EPT_MT_WB), NPT_EINVAL);
	CHECK_EQ(npt_set_format(E.s, NPT_FORMAT_EPT, 0, 2), NPT_EINVAL);
	CHECK_EQ(npt_set_format(E.s, NPT_FORMAT_EPT, 0, 3), NPT_EINVAL);
	CHECK_EQ(npt_set_format(E.s, NPT_FORMAT_EPT, 0, 7), NPT_EINVAL);
	CHECK_EQ(npt_set_format(E.s, (enum npt_format)2, 0, 0), NPT_EINVAL);
	/* Mappings may precede the format; failed faults do not fix it. */
	CHECK_EQ(npt_map(E.s, 0x1000, PG, o, 0, R), 0);
	CHECK_EQ(npt_fault(E.s, 0x2000, R), NPT_EFAULT);
	CHECK_EQ(npt_fault(E.s, 0x1000, W), NPT_EACCES);
	CHECK_EQ(npt_set_format(E.s, NPT_FORMAT_EPT, NPT_EPT_AD, NPT_EPT_MT_WB), 0);
	E.fmt = NPT_FORMAT_EPT;
	E.flags = NPT_EPT_AD;
	E.memtype = NPT_EPT_MT_WB;
	CHECK_EQ(npt_fault(E.s, 0x1000, R), 0);
	CHECK_EQ(hw_entry(0x1000, 1), o->pa[0] | 0x1 | (6 << 3) | I_A);
	CHECK_EQ(npt_set_format(E.s, NPT_FORMAT_NPT, 0, 0), NPT_EBUSY);
	CHECK_EQ(npt_set_format(E.s, NPT_FORMAT_EPT, NPT_EPT_AD, NPT_EPT_MT_WB), NPT_EBUSY);
	/* Emptying the tables does not make the format changeable again. */
	CHECK_EQ(npt_unmap(E.s, 0, 4 * GiB), 0);
	CHECK_EQ(npt_set_format(E.s, NPT_FORMAT_NPT, 0, 0), NPT_EBUSY);
	CHECK_EQ(npt_root_pa(E.s), root);
	env_fini();
}

static void
t_root_stable(void)
{
	struct obj *o;
	uint64_t root, gen = 1, g;
	int i;

	env_init(NPT_FORMAT_EPT, 0, NPT_EPT_MT_WB, 0, 64 * GiB);
	o = obj_new(64);
	root = npt_root_pa(E.s);
	CHECK_EQ(frame_of(root)->kind, F_TABLE);
	for (i = 0; i < 20; i++) {
		g = (uint64_t)i * 3 * GiB;
		CHECK_EQ(npt_map(E.s, g, 64 * PG, o, 0, R | W), 0);
		CHECK_EQ(npt_fault(E.s, g + (uint64_t)i * PG, W), 0);
		CHECK_EQ(npt_root_pa(E.s), root);
		CHECK_EQ(npt_unmap(E.s, g, g + 64 * PG), 0);
		CHECK(npt_generation(E.s) == gen + 1);
		gen = npt_generation(E.s);
		CHECK_EQ(npt_root_pa(E.s), root);
	}
	CHECK_EQ(E.tables_live, 1);
	CHECK_EQ(frame_of(root)->kind, F_TABLE);
	env_fini();
}

static void
t_destroy_many(void)
{
	struct obj *o[4];
	uint64_t base[4] = { 0, 5 * GiB + 0x1ff000, 0x7fffe00000ULL, NPT_GPA_LIMIT - 0x1000000 };
	long tables;
	int i, j;

	env_init(NPT_FORMAT_NPT, 0, 0, 0, NPT_GPA_LIMIT);
	for (i = 0; i < 4; i++) {
		o[i] = obj_new(4096);
		CHECK_EQ(npt_map(E.s, base[i], 4096 * PG, o[i], 0, R | W | X), 0);
	}
	for (i = 0; i < 4; i++)
		for (j = 0; j < 4096; j += 1 + (j % 7))
			CHECK_EQ(npt_fault(E.s, base[i] + (uint64_t)j * PG, (j & 1) ? W : R), 0);
	CHECK(E.getpages > 2000);
	CHECK(E.tables_live > 20);
	tables = 0;
	CHECK_EQ(count_tree(npt_root_pa(E.s), 4, &tables), E.getpages);
	CHECK_EQ(tables, E.tables_live);
	CHECK_EQ(E.invalidations, 0);
	env_fini();	/* every page put, every table freed, every object released */
}

/* Allocation failures at every point of map, fault and a splitting unmap. */
static void
t_enomem(void)
{
	struct obj *o;
	uint64_t g = 0x40000000;
	long k, inj;
	int err;

	for (k = 1; ; k++) {
		env_init(NPT_FORMAT_EPT, 0, NPT_EPT_MT_WB, 0, 64 * GiB);
		o = obj_new(64);
		E.fail_at = k;
		inj = E.injected;
		err = npt_map(E.s, g, 32 * PG, o, 0, R | W);
		if (err == 0)
			err = npt_fault(E.s, g + 5 * PG, W);
		if (err == 0)
			err = npt_fault(E.s, 3 * GiB, R) == NPT_EFAULT ? 0 : -1;
		if (err == 0)
			err = npt_map(E.s, 2 * GiB, PG, o, 0, R);
		if (err == 0) {
			/* Fill the mapping array so that the split must grow it. */
			uint64_t i;

			for (i = 0; i < 6 && err == 0; i++)
				err = npt_map(E.s, 8 * GiB + i * PG, PG, o, 0, R);
		}
		if (err == 0)
			err = npt_unmap(E.s, g + 4 * PG, g + 6 * PG);
		if (err == 0 && E.fail_at > 0) {
			/* k is past the last allocation: done. */
			E.fail_at = 0;
			CHECK_EQ(E.invalidations, 1);
			env_fini();
			break;
		}
		CHECK_EQ(err, NPT_ENOMEM);
		CHECK_EQ(E.injected, inj + 1);
		E.fail_at = 0;
		/* Whatever failed, the space is consistent and tears down cleanly. */
		if (npt_translate(E.s, g + 5 * PG, NULL, NULL) == 0)
			CHECK_EQ(page_refs(o, 5), 1);
		else
			CHECK_EQ(page_refs(o, 5), 0);
		CHECK_EQ(npt_fault(E.s, g + 5 * PG, W) == 0 ||
		    npt_fault(E.s, g + 5 * PG, W) == NPT_EFAULT, 1);
		env_fini();
		CHECK(k < 100);
	}
}

/* -------------------------------------------------------------------------------------------- */
/* Randomized: map/fault/unmap against a reference model                                         */
/* -------------------------------------------------------------------------------------------- */

#define NREG		4
#define REGPAGES	256
#define NSLOTS		(NREG * REGPAGES)
#define RNOBJ		4
#define ROBJPAGES	512
#define MAXMAPS		4096

static const uint64_t reg_base[NREG] = {
	0,				/* from lo */
	0x3ff80000,			/* across the 1 GiB (PDPT entry) boundary */
	0x7ffff80000ULL,		/* across the 512 GiB (PML4 entry) boundary */
	NPT_GPA_LIMIT - REGPAGES * PG,	/* up to hi */
};

struct mmap_ {
	uint64_t gpa, end, off;
	int obj, prot;
};

static struct mmap_ mm[MAXMAPS];
static struct {
	long map_ok, map_eexist, fault_ok, fault_efault, fault_eacces, unmap, max_tables;
	long max_maps, enomem;
} st;
static int nmm;
static uint64_t present[NSLOTS];	/* model: PA entered for the slot, 0 if none */

static uint64_t
slot_gpa(int slot)
{
	return reg_base[slot / REGPAGES] + (uint64_t)(slot % REGPAGES) * PG;
}

static int
slot_of(uint64_t gpa)
{
	int r;

	for (r = 0; r < NREG; r++)
		if (gpa >= reg_base[r] && gpa < reg_base[r] + REGPAGES * PG)
			return r * REGPAGES + (int)((gpa - reg_base[r]) / PG);
	fail(__FILE__, __LINE__, "gpa outside the random regions");
}

static int
model_effprot(int prot)
{
	if (prot == 0)
		return 0;
	if (E.fmt == NPT_FORMAT_NPT)
		return prot | R;
	if (!(prot & R) && !(E.flags & NPT_EPT_XONLY))
		return prot | R;
	return prot;
}

static struct mmap_ *
model_lookup(uint64_t gpa)
{
	int i;

	for (i = 0; i < nmm; i++)
		if (mm[i].gpa <= gpa && gpa < mm[i].end)
			return &mm[i];
	return NULL;
}

static void
model_check(void)
{
	static int refs[RNOBJ][ROBJPAGES];
	struct mmap_ *m;
	uint64_t pa, gpa;
	int slot, prot, err, hw, i, pg;
	long nlive = 0, tables = 0;

	memset(refs, 0, sizeof(refs));
	for (slot = 0; slot < NSLOTS; slot++) {
		gpa = slot_gpa(slot);
		err = npt_translate(E.s, gpa + (uint64_t)(slot & 0xfff), &pa, &prot);
		hw = hw_translate(gpa, &pa, &prot);
		if (present[slot] == 0) {
			CHECK_EQ(err, NPT_EFAULT);
			CHECK_EQ(hw, -1);
			continue;
		}
		nlive++;
		CHECK_EQ(err, 0);
		CHECK_EQ(hw, 0);
		CHECK_EQ(pa, present[slot]);
		m = model_lookup(gpa);
		CHECK(m != NULL);
		pg = (int)((m->off + gpa - m->gpa) / PG);
		CHECK_EQ(E.objs[m->obj].pa[pg], present[slot]);
		CHECK_EQ(prot, model_effprot(m->prot));
		refs[m->obj][pg]++;
		/* And npt_translate agrees on the offset within the page. */
		CHECK_EQ(npt_translate(E.s, gpa + (uint64_t)(slot & 0xfff), &pa, &prot), 0);
		CHECK_EQ(pa, present[slot] | (uint64_t)(slot & 0xfff));
	}
	for (i = 0; i < RNOBJ; i++) {
		int n = 0;

		for (pg = 0; pg < ROBJPAGES; pg++)
			CHECK_EQ(page_refs(&E.objs[i], (size_t)pg), refs[i][pg]);
		for (pg = 0; pg < nmm; pg++)
			n += mm[pg].obj == i;
		CHECK_EQ(E.objs[i].refs, n);
	}
	CHECK_EQ(count_tree(npt_root_pa(E.s), 4, &tables), nlive);
	CHECK_EQ(tables, E.tables_live);
}

static void
random_run(enum npt_format fmt, unsigned int flags, unsigned long steps, unsigned long fail_rate)
{
	static const int map_prots[] = { 0, R, R | W, R | X, R | W | X, X };
	static const int fault_prots[] = { R, W, X, R | W, R | X, R | W | X };
	uint64_t gen = 1, gpa, end, pa;
	int slot, i, err, want, any, len, r;
	long inj, tables;
	struct mmap_ *m;

	env_init(fmt, flags, fmt == NPT_FORMAT_EPT ? NPT_EPT_MT_WB : 0, 0, NPT_GPA_LIMIT);
	for (i = 0; i < RNOBJ; i++)
		obj_new(ROBJPAGES);
	nmm = 0;
	memset(present, 0, sizeof(present));
	E.fail_rate = fail_rate;

	for (cur_step = 1; cur_step <= steps; cur_step++) {
		inj = E.injected;
		r = (int)rnd(100);
		if (r < 20) {
			/* map */
			struct mmap_ n;

			slot = (int)rnd(NSLOTS);
			len = 1 + (int)rnd((uint64_t)(REGPAGES - slot % REGPAGES < 48 ?
			    REGPAGES - slot % REGPAGES : 48));
			n.gpa = slot_gpa(slot);
			n.end = n.gpa + (uint64_t)len * PG;
			n.obj = (int)rnd(RNOBJ);
			n.off = rnd((uint64_t)(ROBJPAGES - len + 1)) * PG;
			n.prot = map_prots[rnd(6)];
			want = 0;
			for (i = 0; i < nmm; i++)
				if (mm[i].gpa < n.end && n.gpa < mm[i].end)
					want = NPT_EEXIST;
			err = npt_map(E.s, n.gpa, n.end - n.gpa, &E.objs[n.obj], n.off, n.prot);
			if (err == NPT_ENOMEM && want == 0 && E.injected > inj) {
				st.enomem++;
				goto check;
			}
			CHECK_EQ(err, want);
			st.map_ok += err == 0;
			st.map_eexist += err == NPT_EEXIST;
			if (err == 0) {
				CHECK(nmm < MAXMAPS);
				mm[nmm++] = n;
			}
		} else if (r < 75) {
			/* fault */
			int prot = fault_prots[rnd(6)];

			/* mostly inside a mapping, else anywhere */
			if (nmm > 0 && rnd(10) < 7) {
				m = &mm[rnd((uint64_t)nmm)];
				gpa = m->gpa + rnd(m->end - m->gpa);
				slot = slot_of(gpa);
			} else {
				slot = (int)rnd(NSLOTS);
				gpa = slot_gpa(slot) + rnd(PG);
			}
			m = model_lookup(gpa);
			if (m == NULL)
				want = NPT_EFAULT;
			else if (prot & ~model_effprot(m->prot))
				want = NPT_EACCES;
			else
				want = 0;
			err = npt_fault(E.s, gpa, prot);
			if (err == NPT_ENOMEM && want == 0 && E.injected > inj) {
				st.enomem++;
				goto check;
			}
			CHECK_EQ(err, want);
			st.fault_ok += err == 0;
			st.fault_efault += err == NPT_EFAULT;
			st.fault_eacces += err == NPT_EACCES;
			if (err == 0) {
				pa = E.objs[m->obj].pa[(m->off + (gpa & ~(PG - 1)) - m->gpa) / PG];
				CHECK(pa != 0);
				CHECK(present[slot] == 0 || present[slot] == pa);
				present[slot] = pa;
			}
		} else if (r < 88) {
			/* unmap a range of a region: holes, whole and partial mappings */
			static struct mmap_ keep[MAXMAPS];
			int nkeep = 0, split = 0;

			slot = (int)rnd(NSLOTS);
			len = 1 + (int)rnd((uint64_t)(REGPAGES - slot % REGPAGES < 80 ?
			    REGPAGES - slot % REGPAGES : 80));
			gpa = slot_gpa(slot);
			end = gpa + (uint64_t)len * PG;
			any = 0;
			for (i = slot; i < slot + len; i++)
				any |= present[i] != 0;
			for (i = 0; i < nmm; i++)
				split |= mm[i].gpa < gpa && mm[i].end > end;
			err = npt_unmap(E.s, gpa, end);
			if (err == NPT_ENOMEM && split && E.injected > inj) {
				st.enomem++;
				goto check;	/* nothing changed */
			}
			CHECK_EQ(err, 0);
			st.unmap++;
			for (i = slot; i < slot + len; i++)
				present[i] = 0;
			for (i = 0; i < nmm; i++) {
				struct mmap_ a = mm[i], b;

				if (a.end <= gpa || a.gpa >= end) {
					keep[nkeep++] = a;
					continue;
				}
				if (a.gpa < gpa) {
					b = a;
					b.end = gpa;
					keep[nkeep++] = b;
				}
				if (a.end > end) {
					b = a;
					b.off += end - a.gpa;
					b.gpa = end;
					keep[nkeep++] = b;
				}
			}
			CHECK(nkeep <= MAXMAPS);
			memcpy(mm, keep, (size_t)nkeep * sizeof(*mm));
			nmm = nkeep;
			/*
			 * One generation step exactly when a present leaf was cleared.  Under
			 * injected failures an empty table left by a failed fault may also be
			 * unlinked, which is a present entry too.
			 */
			if (any) {
				gen++;
				CHECK_EQ(npt_generation(E.s), gen);
			} else if (fail_rate && npt_generation(E.s) == gen + 1) {
				gen++;
			} else {
				CHECK_EQ(npt_generation(E.s), gen);
			}
		} else {
			/* a faulting sweep over a mapping, to populate whole tables */
			if (nmm == 0)
				goto check;
			m = &mm[rnd((uint64_t)nmm)];
			for (gpa = m->gpa; gpa < m->end; gpa += PG) {
				want = model_effprot(m->prot) & R ? 0 : NPT_EACCES;
				err = npt_fault(E.s, gpa, R);
				if (err == NPT_ENOMEM && E.injected > inj) {
					inj = E.injected;
					st.enomem++;
					continue;
				}
				CHECK_EQ(err, want);
				if (err == 0)
					present[slot_of(gpa)] =
					    E.objs[m->obj].pa[(m->off + gpa - m->gpa) / PG];
			}
		}
check:
		if (E.tables_live > st.max_tables)
			st.max_tables = E.tables_live;
		if (nmm > st.max_maps)
			st.max_maps = nmm;
		CHECK_EQ(npt_generation(E.s), gen);
		CHECK_EQ((uint64_t)E.invalidations, gen - 1);
		model_check();
	}

	printf("STATS map_ok=%ld map_eexist=%ld fault_ok=%ld fault_efault=%ld fault_eacces=%ld "
	    "unmap=%ld invalidations=%ld max_tables=%ld max_maps=%ld enomem=%ld\n", st.map_ok,
	    st.map_eexist, st.fault_ok, st.fault_efault, st.fault_eacces, st.unmap, E.invalidations,
	    st.max_tables, st.max_maps, st.enomem);

	/* Unmap everything: back to the root alone, every page and object reference dropped. */
	E.fail_rate = 0;
	CHECK_EQ(npt_unmap(E.s, 0, NPT_GPA_LIMIT), 0);
	tables = 0;
	CHECK_EQ(count_tree(npt_root_pa(E.s), 4, &tables), 0);
	CHECK_EQ(tables, 1);
	CHECK_EQ(E.tables_live, 1);
	CHECK_EQ(E.getpages, E.putpages);
	for (i = 0; i < RNOBJ; i++)
		CHECK_EQ(E.objs[i].refs, 0);
	cur_step = 0;
	env_fini();
}

static unsigned long arg_steps = 3000;

static void t_random_npt(void) { random_run(NPT_FORMAT_NPT, 0, arg_steps, 0); }
static void t_random_ept(void) { random_run(NPT_FORMAT_EPT, 0, arg_steps, 0); }
static void t_random_ept_ad_xonly(void)
{
	random_run(NPT_FORMAT_EPT, NPT_EPT_AD | NPT_EPT_XONLY | NPT_EPT_IPAT, arg_steps, 0);
}
static void t_random_enomem(void) { random_run(NPT_FORMAT_EPT, 0, arg_steps, 12); }

/* -------------------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	void (*fn)(void);
} scenarios[] = {
	{ "create_destroy", t_create_destroy },
	{ "fault_bits_npt", t_fault_bits_npt },
	{ "fault_bits_ept", t_fault_bits_ept },
	{ "fault_errors", t_fault_errors },
	{ "fault_idempotent", t_fault_idempotent },
	{ "obj_offset", t_obj_offset },
	{ "unmap_split", t_unmap_split },
	{ "unmap_unfaulted", t_unmap_unfaulted },
	{ "unmap_tables", t_unmap_tables },
	{ "map_errors", t_map_errors },
	{ "set_format", t_set_format },
	{ "root_stable", t_root_stable },
	{ "destroy_many", t_destroy_many },
	{ "enomem", t_enomem },
	{ "random_npt", t_random_npt },
	{ "random_ept", t_random_ept },
	{ "random_ept_ad_xonly", t_random_ept_ad_xonly },
	{ "random_enomem", t_random_enomem },
};

int
main(int argc, char **argv)
{
	size_t i, n = sizeof(scenarios) / sizeof(scenarios[0]);

	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (i = 0; i < n; i++)
			printf("%s\n", scenarios[i].name);
		return 0;
	}
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: %s --list | SCENARIO [SEED [STEPS]]\n", argv[0]);
		return 2;
	}
	if (argc >= 3)
		rng_state = strtoull(argv[2], NULL, 0) * 2 + 1;
	if (argc >= 4)
		arg_steps = strtoul(argv[3], NULL, 0);
	for (i = 0; i < n; i++) {
		if (strcmp(argv[1], scenarios[i].name) != 0)
			continue;
		cur_scenario = scenarios[i].name;
		scenarios[i].fn();
		frames_fini();
		printf("PASS %s\n", cur_scenario);
		return 0;
	}
	fprintf(stderr, "unknown scenario %s\n", argv[1]);
	return 2;
}
