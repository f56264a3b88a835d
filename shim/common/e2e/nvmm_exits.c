// SPDX-License-Identifier: BSD-2-Clause
/*
 * Benchmark guest loop under NVMM: N I/O-port exits (handled in userland, as a VMM would, with
 * nvmm_assist_io), then N CPUID exits (handled in the kernel).  Prints exits per second of
 * each, measured with CLOCK_MONOTONIC around the run.  kvm_exits.c runs the same guest bytes
 * under KVM.
 *
 * Usage: nvmm_exits [N]
 */
#include "e2e.h"


static double
timed(struct e2e_vm *vm, uint32_t io, uint32_t cpuids)
{
	struct e2e_run_stats rs = { 0 };
	const char *why = "";
	double t;

	e2e_code_exit_loop(vm->mem + E2E_CODE_GPA, io, cpuids);
	if (e2e_vcpu_reset(vm, 0) == -1)
		e2e_fail("reset");
	t = e2e_now();
	if (e2e_run_to_halt(vm, 0, &rs, &why) == -1)
		e2e_fail("run: %s", why);
	t = e2e_now() - t;
	if (rs.io_exits != io)
		e2e_fail("%lu I/O exits, want %u", rs.io_exits, io);
	return t;
}

int
main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 20000;
	struct e2e_vm vm;
	double tio, tcpuid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (nvmm_init() == -1 || e2e_vm_create(&vm, 1, NULL) == -1)
		e2e_fail("machine");
	timed(&vm, 100, 100);				/* warm-up */
	tio = timed(&vm, n, 1);
	tcpuid = timed(&vm, 1, n);
	printf("hypervisor=nvmm exits=%u io_seconds=%.4f cpuid_seconds=%.4f io_exits_per_s=%.0f "
	    "cpuid_exits_per_s=%.0f\n", n, tio, tcpuid, n / tio, n / tcpuid);
	return e2e_vm_destroy(&vm) == -1;
}
