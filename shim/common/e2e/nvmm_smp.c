// SPDX-License-Identifier: BSD-2-Clause
/*
 * SMP: one machine, two vCPUs run concurrently from two threads while the main thread
 *  - moves both threads between host CPUs (sched_setaffinity) so vCPUs migrate while running, and
 *  - remaps the guest page both vCPUs read (gpa_unmap + gpa_map of another host page with a new
 *    value), so every remap must invalidate the nested TLB entries of a vCPU on another CPU.
 * Every value a vCPU reads must belong to a mapping at least as new as the one published before
 * that run started: an older one is a stale nested translation.  Each vCPU's final EDI must be
 * the sum its loop computes.
 *
 * Usage: nvmm_smp [rounds [io-exits-per-round]]
 */
#include "e2e.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#define NWORKERS	2
#define PHASE_MAGIC	0x5a000000u	/* page value = PHASE_MAGIC | phase */

static struct e2e_vm vm;
static _Atomic unsigned int published;	/* the newest phase whose mapping is complete */
static unsigned int nrounds = 6, nio = 200;

struct worker {
	unsigned int idx;
	pthread_t thread;
	_Atomic pid_t tid;
	_Atomic int done;
	int failed;
	char why[160];
	unsigned long migrations, stale, reads, unrelated;
	unsigned int oldest_phase_seen;
	struct e2e_run_stats rs;
	int cpus_seen;			/* bit mask of host CPUs it ran on */
};

static struct worker workers[NWORKERS];
static __thread struct worker *self;
static __thread unsigned int run_start_phase;

static void
io_check(struct nvmm_io *io)
{
	uint32_t v;

	if (io->in || io->size != 4)
		return;
	memcpy(&v, io->data, sizeof(v));
	self->reads++;
	if ((v & 0xff000000u) != PHASE_MAGIC) {
		self->unrelated++;
		return;
	}
	if ((v & 0xffffffu) < run_start_phase)
		self->stale++;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct nvmm_vcpu *vcpu = &vm.vcpu[w->idx];
	unsigned int round;
	int last_cpu = -1;

	self = w;
	w->tid = (pid_t)syscall(SYS_gettid);
	for (round = 0; round < nrounds && !w->failed; round++) {
		if (e2e_vcpu_reset(&vm, w->idx) == -1) {
			snprintf(w->why, sizeof(w->why), "vcpu %u reset: %s", w->idx, strerror(errno));
			w->failed = 1;
			break;
		}
		for (;;) {
			int cpu = sched_getcpu();

			if (cpu >= 0 && cpu < 31)
				w->cpus_seen |= 1 << cpu;
			if (last_cpu != -1 && cpu != last_cpu)
				w->migrations++;
			last_cpu = cpu;
			run_start_phase = atomic_load(&published);
			if (nvmm_vcpu_run(&vm.mach, vcpu) == -1) {
				if (errno == EINTR)
					continue;
				snprintf(w->why, sizeof(w->why), "vcpu %u run: %s", w->idx, strerror(errno));
				w->failed = 1;
				break;
			}
			w->rs.runs++;
			if (vcpu->exit->reason == NVMM_VCPU_EXIT_IO) {
				w->rs.io_exits++;
				if (nvmm_assist_io(&vm.mach, vcpu) == -1) {
					snprintf(w->why, sizeof(w->why), "vcpu %u assist_io: %s", w->idx,
					    strerror(errno));
					w->failed = 1;
					break;
				}
			} else if (vcpu->exit->reason == NVMM_VCPU_EXIT_MEMORY) {
				w->rs.mem_exits++;	/* the page was between unmap and map: retry */
			} else if (vcpu->exit->reason == NVMM_VCPU_EXIT_NONE) {
				w->rs.none_exits++;
			} else if (vcpu->exit->reason == NVMM_VCPU_EXIT_HALTED) {
				uint64_t edi = e2e_gpr(&vm, w->idx, NVMM_X64_GPR_RDI);

				if ((uint32_t)edi != e2e_sum(nio)) {
					snprintf(w->why, sizeof(w->why), "vcpu %u round %u: EDI %#x, want %#x",
					    w->idx, round, (unsigned)edi, e2e_sum(nio));
					w->failed = 1;
				}
				break;
			} else {
				snprintf(w->why, sizeof(w->why), "vcpu %u: unexpected exit %#llx", w->idx,
				    (unsigned long long)vcpu->exit->reason);
				w->failed = 1;
				break;
			}
		}
	}
	w->done = 1;
	return NULL;
}

int
main(int argc, char **argv)
{
	uint8_t *pages;
	unsigned int phase = 0, i, remaps = 0, moves = 0, ncpu, tick = 0;
	unsigned long total_mig = 0;
	cpu_set_t set;
	int fail = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1)
		nrounds = (unsigned)strtoul(argv[1], NULL, 0);
	if (argc > 2)
		nio = (unsigned)strtoul(argv[2], NULL, 0);
	if (nrounds < 1 || nio < 1)
		e2e_fail("usage: nvmm_smp [rounds>=1 [io>=1]]");
	ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	printf("host_cpus=%u\n", ncpu);
	if (ncpu < 2)
		e2e_fail("needs 2 online CPUs, has %u", ncpu);
	if (nvmm_init() == -1)
		e2e_fail("nvmm_init");
	if (e2e_vm_create(&vm, NWORKERS, io_check) == -1)
		e2e_fail("machine with %d vCPUs", NWORKERS);
	e2e_code_read_loop(vm.mem + E2E_CODE_GPA, nio);

	/* Two host pages that take turns behind GPA E2E_DATA_GPA, just above guest RAM. */
	pages = mmap(NULL, 2 * E2E_PAGE, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (pages == MAP_FAILED)
		e2e_fail("mmap");
	if (nvmm_hva_map(&vm.mach, (uintptr_t)pages, 2 * E2E_PAGE) == -1)
		e2e_fail("hva_map of the data pages");
	e2e_put32(pages, PHASE_MAGIC | phase);
	if (nvmm_gpa_map(&vm.mach, (uintptr_t)pages, E2E_DATA_GPA, E2E_PAGE, PROT_READ) == -1)
		e2e_fail("gpa_map of the data page");
	atomic_store(&published, phase);

	for (i = 0; i < NWORKERS; i++) {
		workers[i].idx = i;
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
			e2e_fail("pthread_create");
	}
	while (!(workers[0].done && workers[1].done)) {
		uint8_t *next;

		/* Move each running vCPU thread to the other CPU. */
		for (i = 0; i < NWORKERS; i++) {
			pid_t tid = workers[i].tid;

			if (tid == 0 || workers[i].done)
				continue;
			CPU_ZERO(&set);
			CPU_SET((tick + i) % 2, &set);
			if (sched_setaffinity(tid, sizeof(set), &set) == 0)
				moves++;
		}
		tick++;
		/* Remap the data page to the other host page holding the next phase's value. */
		if (nvmm_gpa_unmap(&vm.mach, (uintptr_t)pages + (phase % 2) * E2E_PAGE, E2E_DATA_GPA,
		    E2E_PAGE) == -1)
			e2e_fail("gpa_unmap, phase %u", phase);
		phase++;
		next = pages + (phase % 2) * E2E_PAGE;
		e2e_put32(next, PHASE_MAGIC | phase);
		if (nvmm_gpa_map(&vm.mach, (uintptr_t)next, E2E_DATA_GPA, E2E_PAGE, PROT_READ) == -1)
			e2e_fail("gpa_map, phase %u", phase);
		atomic_store(&published, phase);
		remaps++;
		usleep(200);
	}
	for (i = 0; i < NWORKERS; i++)
		pthread_join(workers[i].thread, NULL);

	printf("remaps=%u affinity_moves=%u\n", remaps, moves);
	for (i = 0; i < NWORKERS; i++) {
		struct worker *w = &workers[i];

		printf("vcpu%u runs=%lu io_exits=%lu mem_exits=%lu reads=%lu stale=%lu unrelated=%lu "
		    "migrations=%lu cpus_mask=%#x\n", i, w->rs.runs, w->rs.io_exits, w->rs.mem_exits,
		    w->reads, w->stale, w->unrelated, w->migrations, w->cpus_seen);
		total_mig += w->migrations;
		if (w->failed) {
			printf("FAIL: %s\n", w->why);
			fail = 1;
		}
		if (w->stale) {
			printf("FAIL: vcpu %u read %lu value(s) of a mapping removed before its run "
			    "began: stale nested TLB entry\n", i, w->stale);
			fail = 1;
		}
		if (w->unrelated) {
			printf("FAIL: vcpu %u read %lu value(s) that no mapping ever held\n", i,
			    w->unrelated);
			fail = 1;
		}
		if (w->cpus_seen != 0x3) {
			printf("FAIL: vcpu %u ran on CPU mask %#x, not on both CPUs\n", i, w->cpus_seen);
			fail = 1;
		}
	}
	if (total_mig < 4) {
		printf("FAIL: only %lu migration(s) between runs\n", total_mig);
		fail = 1;
	}
	if (nvmm_gpa_unmap(&vm.mach, (uintptr_t)pages + (phase % 2) * E2E_PAGE, E2E_DATA_GPA,
	    E2E_PAGE) == -1 || nvmm_hva_unmap(&vm.mach, (uintptr_t)pages, 2 * E2E_PAGE) == -1)
		e2e_fail("unmapping the data pages");
	if (e2e_vm_destroy(&vm) == -1)
		e2e_fail("destroying the machine");
	printf("migrations=%lu\n", total_mig);
	return fail;
}
