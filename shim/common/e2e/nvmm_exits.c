// SPDX-License-Identifier: BSD-2-Clause
/*
 * Benchmark guest loop under NVMM: N I/O-port exits (handled in userland, as a VMM would, with
 * nvmm_assist_io), then N CPUID exits (handled in the kernel).  Prints exits per second of
 * each, measured with CLOCK_MONOTONIC around the run.  kvm_exits.c runs the same guest bytes
 * under KVM.
 *
 * Where an I/O exit's time goes: each one costs libnvmm a run ioctl and, in nvmm_assist_io, a
 * getstate ioctl (GPRS|SEGS|CRS|MSRS: the comm page's cache is cleared by every run).  So it also
 * times N getstate ioctls of that state (the cache cleared before each, as a run would) and N
 * ioctls that do almost nothing (NVMM_IOC_CAPABILITY: the syscall and the driver's dispatch),
 * and N bare system calls (getppid) for the kernel's own entry and exit.
 *
 * Usage: nvmm_exits [N]
 */
#include "e2e.h"

#include <fcntl.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#define ASSIST_IO_STATE	(NVMM_X64_STATE_GPRS | NVMM_X64_STATE_SEGS | NVMM_X64_STATE_CRS | NVMM_X64_STATE_MSRS)

/* Seconds per getstate of what nvmm_assist_io fetches, never served from the comm page's cache. */
static double
timed_getstate(struct e2e_vm *vm, uint32_t n)
{
	struct nvmm_vcpu *vcpu = &vm->vcpu[0];
	/* libnvmm's vcpu->state is the comm page's state */
	struct nvmm_comm_page *comm = (struct nvmm_comm_page *)(void *)
	    ((char *)vcpu->state - offsetof(struct nvmm_comm_page, state));
	double t = e2e_now();
	uint32_t i;

	for (i = 0; i < n; i++) {
		comm->state_cached = 0;
		if (nvmm_vcpu_getstate(&vm->mach, vcpu, ASSIST_IO_STATE) == -1)
			e2e_fail("getstate");
	}
	return (e2e_now() - t) / n;
}

/* Seconds per bare system call. */
static double
timed_syscall(uint32_t n)
{
	double t = e2e_now();
	uint32_t i;

	for (i = 0; i < n; i++)
		if (syscall(SYS_getppid) == -1)
			e2e_fail("getppid");
	return (e2e_now() - t) / n;
}

/* Seconds per NVMM_IOC_CAPABILITY: the syscall and the driver's ioctl dispatch. */
static double
timed_null_ioctl(uint32_t n)
{
	struct nvmm_ioc_capability args;
	int fd = open("/dev/nvmm", O_RDONLY | O_CLOEXEC);
	double t;
	uint32_t i;

	if (fd == -1)
		e2e_fail("open /dev/nvmm");
	t = e2e_now();
	for (i = 0; i < n; i++)
		if (ioctl(fd, NVMM_IOC_CAPABILITY, &args) == -1)
			e2e_fail("NVMM_IOC_CAPABILITY");
	t = (e2e_now() - t) / n;
	close(fd);
	return t;
}


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
	double tio, tcpuid, tget, tnull, tsys;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (nvmm_init() == -1 || e2e_vm_create(&vm, 1, NULL) == -1)
		e2e_fail("machine");
	timed(&vm, 100, 100);				/* warm-up */
	tio = timed(&vm, n, 1);
	tcpuid = timed(&vm, 1, n);
	tget = timed_getstate(&vm, n);
	tnull = timed_null_ioctl(n);
	tsys = timed_syscall(n);
	printf("hypervisor=nvmm exits=%u io_seconds=%.4f cpuid_seconds=%.4f io_exits_per_s=%.0f "
	    "cpuid_exits_per_s=%.0f\n", n, tio, tcpuid, n / tio, n / tcpuid);
	printf("io_exit_us=%.2f getstate_us=%.2f null_ioctl_us=%.2f syscall_us=%.2f\n", tio / n * 1e6,
	    tget * 1e6, tnull * 1e6, tsys * 1e6);
	return e2e_vm_destroy(&vm) == -1;
}
