/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The fake backend's vCPU, shared by nvmm_hosted_backend.c (the backend interface) and
 * nvmm_hosted_cpu.c (the fake CPU).  Upstream's world: NVMM's own types.
 */

#ifndef _NVMM_HOSTED_FAKE_H_
#define _NVMM_HOSTED_FAKE_H_

#include "nvmm.h"
#include "nvmm_internal.h"
#include "nvmm_hosted.h"
#include "nvmm_hosted_api.h"

#define NVMM_HOSTED_NCPUIDS	32

struct nvmm_hosted_vcpu {
	struct nvmm_x64_state state;		/* the registers, as the hardware would hold them */
	bool int_window_exit;
	bool nmi_window_exit;
	bool evt_pending;
	struct nvmm_x86_event event;		/* the injected event, until delivered */
	bool cpuidpresent[NVMM_HOSTED_NCPUIDS];
	struct nvmm_vcpu_conf_cpuid cpuid[NVMM_HOSTED_NCPUIDS];
	bool tpr_exit_changed;

	/* The script: exits returned before the fake CPU runs. */
	struct nvmm_vcpu_exit script[NVMM_HOSTED_SCRIPT_MAX];
	size_t script_head, script_len;

	unsigned long insns, exits, events;
};

/*
 * Run the guest's code on the fake CPU until an instruction causes an exit, at most budget
 * instructions (then EXIT_NONE, as a host interrupt would).  Returns the exit in *exit.
 */
void nvmm_hosted_cpu_run(struct nvmm_machine *mach, struct nvmm_hosted_vcpu *vc,
    struct nvmm_vcpu_exit *exit, unsigned long budget);

#endif /* !_NVMM_HOSTED_FAKE_H_ */
