// SPDX-License-Identifier: BSD-2-Clause
/*
 * Ownership: a machine belongs to the open file that created it.  A second process, with its
 * own open of /dev/nvmm, must get EPERM for every ioctl naming the first process's machine, and
 * its attempts must leave that machine working.
 *
 * Usage: nvmm_owner
 */
#include "e2e.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

struct probe {
	const char *name;
	unsigned long cmd;
	void *arg;
};

static int
intruder(nvmm_machid_t machid, uintptr_t hva)
{
	/* x86 has no machine-configure op, so that ioctl fails EINVAL before any ownership check. */
	struct nvmm_ioc_vcpu_configure vconf = { .machid = machid, .cpuid = 0,
	    .op = NVMM_VCPU_CONF_MD_BEGIN, .conf = NULL };	/* a valid op: ownership decides */
	struct nvmm_ioc_vcpu_create vcreate = { .machid = machid, .cpuid = 1 };
	struct nvmm_ioc_vcpu_destroy vdestroy = { .machid = machid, .cpuid = 0 };
	struct nvmm_ioc_vcpu_getstate getst = { .machid = machid, .cpuid = 0 };
	struct nvmm_ioc_vcpu_setstate setst = { .machid = machid, .cpuid = 0 };
	struct nvmm_ioc_vcpu_inject inject = { .machid = machid, .cpuid = 0 };
	struct nvmm_ioc_vcpu_run run = { .machid = machid, .cpuid = 0 };
	struct nvmm_ioc_hva_map hmap = { .machid = machid, .hva = hva, .size = E2E_PAGE };
	struct nvmm_ioc_hva_unmap hunmap = { .machid = machid, .hva = hva, .size = E2E_MEM_SIZE };
	struct nvmm_ioc_gpa_map gmap = { .machid = machid, .hva = hva, .gpa = 0x20000,
	    .size = E2E_PAGE, .prot = PROT_READ };
	struct nvmm_ioc_gpa_unmap gunmap = { .machid = machid, .gpa = 0, .size = E2E_MEM_SIZE };
	struct nvmm_ioc_machine_destroy mdestroy = { .machid = machid };
	const struct probe probes[] = {
		{ "VCPU_CONFIGURE", NVMM_IOC_VCPU_CONFIGURE, &vconf },
		{ "VCPU_CREATE", NVMM_IOC_VCPU_CREATE, &vcreate },
		{ "VCPU_GETSTATE", NVMM_IOC_VCPU_GETSTATE, &getst },
		{ "VCPU_SETSTATE", NVMM_IOC_VCPU_SETSTATE, &setst },
		{ "VCPU_INJECT", NVMM_IOC_VCPU_INJECT, &inject },
		{ "VCPU_RUN", NVMM_IOC_VCPU_RUN, &run },
		{ "HVA_MAP", NVMM_IOC_HVA_MAP, &hmap },
		{ "GPA_MAP", NVMM_IOC_GPA_MAP, &gmap },
		{ "GPA_UNMAP", NVMM_IOC_GPA_UNMAP, &gunmap },
		{ "HVA_UNMAP", NVMM_IOC_HVA_UNMAP, &hunmap },
		{ "VCPU_DESTROY", NVMM_IOC_VCPU_DESTROY, &vdestroy },
		{ "MACHINE_DESTROY", NVMM_IOC_MACHINE_DESTROY, &mdestroy },
	};
	unsigned int i, bad = 0;
	int fd = open("/dev/nvmm", O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		printf("FAIL: second process cannot open /dev/nvmm: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		int r = ioctl(fd, probes[i].cmd, probes[i].arg);
		int e = errno;

		printf("intruder %-17s -> %s\n", probes[i].name, r == 0 ? "success" : strerror(e));
		if (r != -1 || e != EPERM)
			bad++;
	}
	close(fd);
	printf("intruder_probes=%u eperm=%u\n", i, i - bad);
	return bad != 0;
}

int
main(void)
{
	struct e2e_vm vm;
	struct e2e_run_stats rs = { 0 };
	const char *why = "";
	int status;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (nvmm_init() == -1)
		e2e_fail("nvmm_init");
	if (e2e_vm_create(&vm, 1, NULL) == -1)
		e2e_fail("machine");
	e2e_code_exit_loop(vm.mem + E2E_CODE_GPA, 3, 2);
	if (e2e_vcpu_reset(&vm, 0) == -1 || e2e_run_to_halt(&vm, 0, &rs, &why) == -1)
		e2e_fail("owner's first run: %s", why);
	printf("owner machid=%u io_exits=%lu\n", vm.mach.machid, rs.io_exits);

	pid = fork();
	if (pid == -1)
		e2e_fail("fork");
	if (pid == 0)
		_exit(intruder(vm.mach.machid, (uintptr_t)vm.mem));
	if (waitpid(pid, &status, 0) != pid)
		e2e_fail("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("FAIL: another process's ioctls on machine %u did not all get EPERM\n",
		    vm.mach.machid);
		return 1;
	}

	/* The owner's machine is intact: it still runs and computes the same sum. */
	rs.io_exits = 0;
	if (e2e_vcpu_reset(&vm, 0) == -1 || e2e_run_to_halt(&vm, 0, &rs, &why) == -1)
		e2e_fail("owner's run after the intrusion: %s", why);
	if ((uint32_t)e2e_gpr(&vm, 0, NVMM_X64_GPR_RDI) != e2e_sum(3) || rs.io_exits != 3)
		e2e_fail("owner's machine changed: EDI or exit count differ");
	if (e2e_vm_destroy(&vm) == -1)
		e2e_fail("owner's destroy");
	printf("owner_intact=1\n");
	return 0;
}
