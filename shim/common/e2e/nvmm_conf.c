// SPDX-License-Identifier: BSD-2-Clause
/*
 * The VMM's configuration reaches the vCPU.  NVMM_VCPU_CONF_CPUID is passed by pointer, so the
 * driver copies it in from the caller: asking CPUID leaf 0 to exit to userland must make the
 * exit loop's first CPUID come back as NVMM_VCPU_EXIT_CPUID, where before the configuration the
 * kernel answered every CPUID itself and the guest ran on to its HLT.
 *
 * Usage: nvmm_conf
 */
#include "e2e.h"

int
main(void)
{
	struct nvmm_vcpu_conf_cpuid conf;
	struct e2e_run_stats rs = { 0 };
	struct nvmm_vcpu *vcpu;
	const char *why = "";
	struct e2e_vm vm;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (nvmm_init() == -1 || e2e_vm_create(&vm, 1, NULL) == -1)
		e2e_fail("machine");
	vcpu = &vm.vcpu[0];
	e2e_code_exit_loop(vm.mem + E2E_CODE_GPA, 1, 3);
	if (e2e_vcpu_reset(&vm, 0) == -1)
		e2e_fail("reset");
	if (e2e_run_to_halt(&vm, 0, &rs, &why) == -1)
		e2e_fail("run before the configuration: %s", why);

	memset(&conf, 0, sizeof(conf));
	conf.exit = 1;
	conf.leaf = 0;
	if (nvmm_vcpu_configure(&vm.mach, vcpu, NVMM_VCPU_CONF_CPUID, &conf) == -1)
		e2e_fail("NVMM_VCPU_CONF_CPUID");
	if (e2e_vcpu_reset(&vm, 0) == -1)
		e2e_fail("reset");
	for (;;) {
		if (nvmm_vcpu_run(&vm.mach, vcpu) == -1) {
			if (errno == EINTR)
				continue;
			e2e_fail("nvmm_vcpu_run");
		}
		if (vcpu->exit->reason == NVMM_VCPU_EXIT_IO) {
			if (nvmm_assist_io(&vm.mach, vcpu) == -1)
				e2e_fail("nvmm_assist_io");
			continue;
		}
		if (vcpu->exit->reason != NVMM_VCPU_EXIT_NONE)
			break;
	}
	if (vcpu->exit->reason != NVMM_VCPU_EXIT_CPUID)
		e2e_fail("exit reason %#llx after configuring leaf 0 to exit, want NVMM_VCPU_EXIT_CPUID (%#llx)",
		    (unsigned long long)vcpu->exit->reason, (unsigned long long)NVMM_VCPU_EXIT_CPUID);
	printf("io_exits_before=%lu cpuid_exit_leaf=0 npc=%#llx\n", rs.io_exits,
	    (unsigned long long)vcpu->exit->u.insn.npc);
	return e2e_vm_destroy(&vm) == -1;
}
