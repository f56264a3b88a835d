// SPDX-License-Identifier: BSD-2-Clause
/*
 * The benchmark guest loop of nvmm_exits.c, under the kernel's own KVM (Documentation/virt/kvm/
 * api.rst): N I/O-port exits returned to userland (KVM_EXIT_IO), then N CPUID exits the kernel
 * handles, then HLT (KVM_EXIT_HLT).  Same guest bytes (e2e.h), same real-mode setup.
 *
 * Usage: kvm_exits [N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "e2e_code.h"

static int vcpufd;
static struct kvm_run *run;
static uint8_t *mem;

static void __attribute__((noreturn))
fail(const char *what)
{
	printf("FAIL: %s (errno %d: %s)\n", what, errno, strerror(errno));
	exit(1);
}

static double
timed(uint32_t io, uint32_t cpuids)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	unsigned long ios = 0;
	double t;

	e2e_code_exit_loop(mem + E2E_CODE_GPA, io, cpuids);
	if (ioctl(vcpufd, KVM_GET_SREGS, &sregs) == -1)
		fail("KVM_GET_SREGS");
	sregs.cs.base = sregs.cs.selector = 0;
	sregs.ds.base = sregs.ds.selector = 0;
	sregs.es.base = sregs.es.selector = 0;
	sregs.ss.base = sregs.ss.selector = 0;
	if (ioctl(vcpufd, KVM_SET_SREGS, &sregs) == -1)
		fail("KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = E2E_CODE_GPA;
	regs.rflags = 0x2;
	if (ioctl(vcpufd, KVM_SET_REGS, &regs) == -1)
		fail("KVM_SET_REGS");
	t = e2e_now();
	for (;;) {
		if (ioctl(vcpufd, KVM_RUN, NULL) == -1) {
			if (errno == EINTR)
				continue;
			fail("KVM_RUN");
		}
		if (run->exit_reason == KVM_EXIT_IO) {
			ios++;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		printf("FAIL: unexpected KVM exit %u\n", run->exit_reason);
		exit(1);
	}
	t = e2e_now() - t;
	if (ios != io) {
		printf("FAIL: %lu I/O exits, want %u\n", ios, io);
		exit(1);
	}
	return t;
}

int
main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 20000;
	struct kvm_userspace_memory_region region;
	int kvm, vmfd, size;
	double tio, tcpuid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm == -1)
		fail("open /dev/kvm");
	vmfd = ioctl(kvm, KVM_CREATE_VM, 0UL);
	if (vmfd == -1)
		fail("KVM_CREATE_VM");
	mem = mmap(NULL, E2E_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		fail("mmap");
	memset(&region, 0, sizeof(region));
	region.guest_phys_addr = 0;
	region.memory_size = E2E_MEM_SIZE;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(vmfd, KVM_SET_USER_MEMORY_REGION, &region) == -1)
		fail("KVM_SET_USER_MEMORY_REGION");
	vcpufd = ioctl(vmfd, KVM_CREATE_VCPU, 0UL);
	if (vcpufd == -1)
		fail("KVM_CREATE_VCPU");
	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, NULL);
	run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpufd, 0);
	if (run == MAP_FAILED)
		fail("mmap kvm_run");
	timed(100, 100);				/* warm-up */
	tio = timed(n, 1);
	tcpuid = timed(1, n);
	printf("hypervisor=kvm exits=%u io_seconds=%.4f cpuid_seconds=%.4f io_exits_per_s=%.0f "
	    "cpuid_exits_per_s=%.0f\n", n, tio, tcpuid, n / tio, n / tcpuid);
	return 0;
}
