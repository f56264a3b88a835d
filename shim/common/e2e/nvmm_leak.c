/*
 * Leak check: N cycles of machine create, vCPU create, guest memory map, a run with I/O and
 * CPUID exits, unmap and destroy.  Free memory after the cycles is compared with free memory
 * after one warm-up cycle (caches dropped at both points); the deltas are printed in KiB.
 *
 * Usage: nvmm_leak [cycles [max-leak-kib]]
 */
#include "e2e.h"

struct snapshot {
	long free, unreclaim, shmem;
};

static void
snap(struct snapshot *s)
{
	e2e_settle();
	usleep(100000);
	s->free = e2e_meminfo("MemFree");
	s->unreclaim = e2e_meminfo("SUnreclaim");
	s->shmem = e2e_meminfo("Shmem");
}

static void
cycle(unsigned long n)
{
	struct e2e_vm vm;
	struct e2e_run_stats rs = { 0 };
	const char *why = "";

	if (e2e_vm_create(&vm, 1, NULL) == -1)
		e2e_fail("cycle %lu: machine", n);
	e2e_code_exit_loop(vm.mem + E2E_CODE_GPA, 2, 1);
	if (e2e_vcpu_reset(&vm, 0) == -1 || e2e_run_to_halt(&vm, 0, &rs, &why) == -1)
		e2e_fail("cycle %lu: run: %s", n, why);
	if (rs.io_exits != 2)
		e2e_fail("cycle %lu: %lu I/O exits, want 2", n, rs.io_exits);
	if (e2e_vm_destroy(&vm) == -1)
		e2e_fail("cycle %lu: destroy", n);
}

int
main(int argc, char **argv)
{
	unsigned long n, cycles = argc > 1 ? strtoul(argv[1], NULL, 0) : 1000;
	long limit = argc > 2 ? strtol(argv[2], NULL, 0) : 512;
	struct snapshot before, after;
	long dfree, dunrec, dshmem;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (nvmm_init() == -1)
		e2e_fail("nvmm_init");
	cycle(0);
	snap(&before);
	for (n = 1; n <= cycles; n++) {
		cycle(n);
		if (n % 250 == 0)
			printf("cycles_done=%lu\n", n);
	}
	snap(&after);
	dfree = before.free - after.free;
	dunrec = after.unreclaim - before.unreclaim;
	dshmem = after.shmem - before.shmem;
	printf("cycles=%lu memfree_before_kib=%ld memfree_after_kib=%ld memfree_delta_kib=%ld "
	    "sunreclaim_delta_kib=%ld shmem_delta_kib=%ld limit_kib=%ld\n", cycles, before.free,
	    after.free, -dfree, dunrec, dshmem, limit);
	if (before.free < 0 || after.free < 0)
		e2e_fail("cannot read /proc/meminfo");
	if (dfree > limit || dunrec > limit || dshmem > limit) {
		printf("FAIL: %lu cycles kept %ld KiB (unreclaimable slab %ld KiB, shmem %ld KiB), "
		    "more than %ld KiB\n", cycles, dfree, dunrec, dshmem, limit);
		return 1;
	}
	return 0;
}
