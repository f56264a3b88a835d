// SPDX-License-Identifier: BSD-2-Clause
/*
 * The fake backend: NVMM's backend interface (struct nvmm_impl, nvmm_internal.h) implemented
 * without virtualization hardware, for the hosted target.
 *
 * Written from the interface's semantics -- the comm page protocol of nvmm.h (state_wanted,
 * state_cached, state_commit, event_commit), the exit structures and capability of nvmm_x86.h, and
 * the configuration and event rules libnvmm(3) documents -- not from the hardware backends:
 *
 *  - a vCPU's registers live in the backend (struct nvmm_hosted_vcpu); setstate copies the groups
 *    userland committed from the comm page, getstate the groups it wants into it, and both mark
 *    them cached; a run applies the pending commit and drops the cache first;
 *  - an event userland commits is checked (an exception is a vector below 32 other than NMI's)
 *    and stays pending until the next entry delivers it;
 *  - a run returns, in order: an interrupt or NMI window exit when userland asked for one and the
 *    guest can take it, the next exit a test scripted (nvmm_hosted_script()), else the exit of the
 *    fake CPU (nvmm_hosted_cpu.c) running the guest's code.  I/O and memory exits provide the
 *    GPRs, segments, control registers and MSRs in the comm page, as a real backend does, so that
 *    libnvmm's assists need no getstate;
 *  - CPUID configuration follows libnvmm(3): mask and exit exclusive, set and del disjoint, neither
 *    removes the leaf; at most NVMM_HOSTED_NCPUIDS leaves (ENOBUFS beyond).
 *
 * The frontend's backend list names the two x86 backends (nvmm.c): the hosted build has neither,
 * and links this fake as the first one (nvmm_x86_svm) and an absent second (nvmm_x86_vmx).
 */

#include "nvmm_hosted_fake.h"

/* What an I/O or memory exit provides in the comm page: all that libnvmm's assists read. */
#define NVMM_HOSTED_ASSIST_STATE \
	(NVMM_X64_STATE_GPRS | NVMM_X64_STATE_SEGS | NVMM_X64_STATE_CRS | NVMM_X64_STATE_MSRS)

/* The fake CPU's instructions per entry before it returns as a host interrupt would. */
#define NVMM_HOSTED_BUDGET	100000

static os_mtx_t nvmm_hosted_registry_lock;
static struct nvmm_hosted_vcpu *nvmm_hosted_registry[NVMM_MAX_MACHINES][NVMM_MAX_VCPUS];

static const size_t nvmm_hosted_vcpu_conf_sizes[NVMM_X86_VCPU_NCONF] = {
	[NVMM_VCPU_CONF_MD(NVMM_VCPU_CONF_CPUID)] = sizeof(struct nvmm_vcpu_conf_cpuid),
	[NVMM_VCPU_CONF_MD(NVMM_VCPU_CONF_TPR)] = sizeof(struct nvmm_vcpu_conf_tpr),
};

static bool
nvmm_hosted_ident(void)
{
	return true;
}

static bool
nvmm_hosted_absent(void)
{
	return false;
}

static void
nvmm_hosted_backend_init(void)
{
	os_mtx_init(&nvmm_hosted_registry_lock);
}

static void
nvmm_hosted_backend_fini(void)
{
	os_mtx_destroy(&nvmm_hosted_registry_lock);
}

static void
nvmm_hosted_capability(struct nvmm_capability *cap)
{
	cap->arch.mach_conf_support = 0;
	cap->arch.vcpu_conf_support = NVMM_CAP_ARCH_VCPU_CONF_CPUID | NVMM_CAP_ARCH_VCPU_CONF_TPR;
	cap->arch.xcr0_mask = 0;
	cap->arch.mxcsr_mask = x86_fpu_mxcsr_mask;
	cap->arch.conf_cpuid_maxops = NVMM_HOSTED_NCPUIDS;
}

static void
nvmm_hosted_machine_create(struct nvmm_machine *mach)
{
	/*
	 * The 2024 upstream never drops the creator's reference of the comm object (fixed upstream
	 * in 2026): the machine's vmspace takes it, as on the kernel targets.
	 */
	nvmm_hosted_vmspace_own(mach->vm, mach->commvmobj);
	mach->machdata = NULL;
}

static void
nvmm_hosted_machine_destroy(struct nvmm_machine *mach)
{
	(void)mach;
}

static int
nvmm_hosted_machine_configure(struct nvmm_machine *mach, uint64_t op, void *data)
{
	(void)mach;
	(void)op;
	(void)data;
	return EINVAL;		/* x86 has no machine configuration */
}

/* State: the comm page protocol */

/* Copy the state groups of flags (NVMM_X64_STATE_*) from one register file to the other. */
static void
nvmm_hosted_copy_state(struct nvmm_x64_state *to, const struct nvmm_x64_state *from, uint64_t flags)
{
	if (flags & NVMM_X64_STATE_SEGS)
		memcpy(to->segs, from->segs, sizeof(to->segs));
	if (flags & NVMM_X64_STATE_GPRS)
		memcpy(to->gprs, from->gprs, sizeof(to->gprs));
	if (flags & NVMM_X64_STATE_CRS)
		memcpy(to->crs, from->crs, sizeof(to->crs));
	if (flags & NVMM_X64_STATE_DRS)
		memcpy(to->drs, from->drs, sizeof(to->drs));
	if (flags & NVMM_X64_STATE_MSRS)
		memcpy(to->msrs, from->msrs, sizeof(to->msrs));
	if (flags & NVMM_X64_STATE_INTR)
		to->intr = from->intr;
	if (flags & NVMM_X64_STATE_FPU)
		to->fpu = from->fpu;
}

static void
nvmm_hosted_vcpu_setstate(struct nvmm_cpu *vcpu)
{
	struct nvmm_comm_page *comm = vcpu->comm;
	struct nvmm_hosted_vcpu *vc = vcpu->cpudata;
	struct nvmm_x64_state *to = &vc->state;
	uint64_t flags = comm->state_wanted;

	nvmm_hosted_copy_state(to, &comm->state, flags);
	if (flags & NVMM_X64_STATE_INTR) {
		vc->int_window_exit = to->intr.int_window_exiting;
		vc->nmi_window_exit = to->intr.nmi_window_exiting;
	}
	if (flags & NVMM_X64_STATE_FPU) {
		/* the host's MXCSR mask bounds what the guest may set (as FXRSTOR would fault) */
		to->fpu.fx_mxcsr_mask &= x86_fpu_mxcsr_mask;
		to->fpu.fx_mxcsr &= to->fpu.fx_mxcsr_mask;
	}

	comm->state_wanted = 0;
	comm->state_cached |= flags;
}

static void
nvmm_hosted_vcpu_getstate(struct nvmm_cpu *vcpu)
{
	struct nvmm_comm_page *comm = vcpu->comm;
	struct nvmm_hosted_vcpu *vc = vcpu->cpudata;
	uint64_t flags = comm->state_wanted;

	nvmm_hosted_copy_state(&comm->state, &vc->state, flags);
	if (flags & NVMM_X64_STATE_INTR) {
		comm->state.intr.int_window_exiting = vc->int_window_exit;
		comm->state.intr.nmi_window_exiting = vc->nmi_window_exit;
		comm->state.intr.evt_pending = vc->evt_pending;
	}

	comm->state_wanted = 0;
	comm->state_cached |= flags;
}

static void
nvmm_hosted_state_provide(struct nvmm_cpu *vcpu, uint64_t flags)
{
	vcpu->comm->state_wanted = flags;
	nvmm_hosted_vcpu_getstate(vcpu);
}

static int
nvmm_hosted_vcpu_inject(struct nvmm_cpu *vcpu)
{
	struct nvmm_comm_page *comm = vcpu->comm;
	struct nvmm_hosted_vcpu *vc = vcpu->cpudata;
	struct nvmm_x86_event event = comm->event;

	switch (event.type) {
	case NVMM_VCPU_EVENT_EXCP:
		if (event.vector == 2 || event.vector >= 32)
			return EINVAL;
		break;
	case NVMM_VCPU_EVENT_INTR:
		if (event.vector == 2)
			vc->nmi_window_exit = true;	/* until the guest's IRET, as hardware NMIs */
		break;
	default:
		return EINVAL;
	}
	vc->event = event;
	vc->evt_pending = true;
	return 0;
}

/* vCPUs */

static int
nvmm_hosted_vcpu_create(struct nvmm_machine *mach, struct nvmm_cpu *vcpu)
{
	struct nvmm_hosted_vcpu *vc;

	vc = os_mem_zalloc(sizeof(*vc));
	vcpu->cpudata = vc;

	os_mtx_lock(&nvmm_hosted_registry_lock);
	nvmm_hosted_registry[mach->machid][vcpu->cpuid] = vc;
	os_mtx_unlock(&nvmm_hosted_registry_lock);

	/* The RESET state every x86 backend installs. */
	memcpy(&vcpu->comm->state, &nvmm_x86_reset_state, sizeof(nvmm_x86_reset_state));
	vcpu->comm->state_wanted = NVMM_X64_STATE_ALL;
	vcpu->comm->state_cached = 0;
	nvmm_hosted_vcpu_setstate(vcpu);
	return 0;
}

static void
nvmm_hosted_vcpu_destroy(struct nvmm_machine *mach, struct nvmm_cpu *vcpu)
{
	os_mtx_lock(&nvmm_hosted_registry_lock);
	nvmm_hosted_registry[mach->machid][vcpu->cpuid] = NULL;
	os_mtx_unlock(&nvmm_hosted_registry_lock);
	os_mem_free(vcpu->cpudata, sizeof(struct nvmm_hosted_vcpu));
	vcpu->cpudata = NULL;
}

static int
nvmm_hosted_configure_cpuid(struct nvmm_hosted_vcpu *vc, const struct nvmm_vcpu_conf_cpuid *c)
{
	size_t i, free_slot = NVMM_HOSTED_NCPUIDS;

	if (c->mask && c->exit)
		return EINVAL;
	if (c->mask && ((c->u.mask.set.eax & c->u.mask.del.eax) ||
	    (c->u.mask.set.ebx & c->u.mask.del.ebx) || (c->u.mask.set.ecx & c->u.mask.del.ecx) ||
	    (c->u.mask.set.edx & c->u.mask.del.edx)))
		return EINVAL;
	for (i = 0; i < NVMM_HOSTED_NCPUIDS; i++) {
		if (!vc->cpuidpresent[i]) {
			if (free_slot == NVMM_HOSTED_NCPUIDS)
				free_slot = i;
			continue;
		}
		if (vc->cpuid[i].leaf != c->leaf)
			continue;
		if (!c->mask && !c->exit)
			vc->cpuidpresent[i] = false;	/* back to the default behaviour */
		else
			vc->cpuid[i] = *c;
		return 0;
	}
	if (!c->mask && !c->exit)
		return 0;
	if (free_slot == NVMM_HOSTED_NCPUIDS)
		return ENOBUFS;
	vc->cpuid[free_slot] = *c;
	vc->cpuidpresent[free_slot] = true;
	return 0;
}

static int
nvmm_hosted_vcpu_configure(struct nvmm_cpu *vcpu, uint64_t op, void *data)
{
	struct nvmm_hosted_vcpu *vc = vcpu->cpudata;

	switch (op) {
	case NVMM_VCPU_CONF_MD(NVMM_VCPU_CONF_CPUID):
		return nvmm_hosted_configure_cpuid(vc, data);
	case NVMM_VCPU_CONF_MD(NVMM_VCPU_CONF_TPR):
		vc->tpr_exit_changed = ((struct nvmm_vcpu_conf_tpr *)data)->exit_changed;
		return 0;
	default:
		return EINVAL;
	}
}

/* Running */

/* The next scripted exit, if any (the registry lock orders it with nvmm_hosted_script()). */
static bool
nvmm_hosted_script_next(struct nvmm_hosted_vcpu *vc, struct nvmm_vcpu_exit *exit)
{
	bool found = false;

	os_mtx_lock(&nvmm_hosted_registry_lock);
	if (vc->script_len > 0) {
		*exit = vc->script[vc->script_head];
		vc->script_head = (vc->script_head + 1) % NVMM_HOSTED_SCRIPT_MAX;
		vc->script_len--;
		found = true;
	}
	os_mtx_unlock(&nvmm_hosted_registry_lock);
	return found;
}

static int
nvmm_hosted_vcpu_run(struct nvmm_machine *mach, struct nvmm_cpu *vcpu,
    struct nvmm_vcpu_exit *exit)
{
	struct nvmm_comm_page *comm = vcpu->comm;
	struct nvmm_hosted_vcpu *vc = vcpu->cpudata;
	struct nvmm_x64_state *s = &vc->state;
	bool can_intr;

	/* Apply what userland committed; its cached copy is stale from here on. */
	comm->state_wanted = comm->state_commit;
	comm->state_commit = 0;
	nvmm_hosted_vcpu_setstate(vcpu);
	comm->state_cached = 0;

	/*
	 * event_commit is a bool in memory the process writes: any byte may be there, and loading a
	 * bool that is neither 0 nor 1 is undefined (C11 6.2.6.1), so read the byte.  (The hardware
	 * backends load it as a bool: reported upstream, found by the ioctl harness.)
	 */
	if (*(volatile uint8_t *)&comm->event_commit != 0) {
		comm->event_commit = false;
		if (nvmm_hosted_vcpu_inject(vcpu) != 0)
			return EINVAL;
	}

	os_preempt_disable();
	vcpu->hcpu_last = os_curcpu_number();

	/* VM entry delivers a pending event (the fake CPU does not vector it through an IDT). */
	if (vc->evt_pending) {
		vc->evt_pending = false;
		vc->events++;
	}

	can_intr = (s->gprs[NVMM_X64_GPR_RFLAGS] & PSL_I) != 0 && !s->intr.int_shadow;
	memset(exit, 0, sizeof(*exit));
	if (vc->int_window_exit && can_intr) {
		exit->reason = NVMM_VCPU_EXIT_INT_READY;
	} else if (vc->nmi_window_exit && !s->intr.int_shadow) {
		exit->reason = NVMM_VCPU_EXIT_NMI_READY;
	} else if (!nvmm_hosted_script_next(vc, exit)) {
		nvmm_hosted_cpu_run(mach, vc, exit, NVMM_HOSTED_BUDGET);
	}

	switch (exit->reason) {
	case NVMM_VCPU_EXIT_IO:
	case NVMM_VCPU_EXIT_MEMORY:
		nvmm_hosted_state_provide(vcpu, NVMM_HOSTED_ASSIST_STATE);
		break;
	case NVMM_VCPU_EXIT_RDMSR:
	case NVMM_VCPU_EXIT_WRMSR:
	case NVMM_VCPU_EXIT_CPUID:
		nvmm_hosted_state_provide(vcpu, NVMM_X64_STATE_GPRS);
		break;
	}
	vc->exits++;
	os_preempt_enable();

	exit->exitstate.rflags = s->gprs[NVMM_X64_GPR_RFLAGS];
	exit->exitstate.cr8 = s->crs[NVMM_X64_CR_CR8];
	exit->exitstate.int_shadow = s->intr.int_shadow;
	exit->exitstate.int_window_exiting = vc->int_window_exit;
	exit->exitstate.nmi_window_exiting = vc->nmi_window_exit;
	exit->exitstate.evt_pending = vc->evt_pending;
	return 0;
}

/* The program's side (nvmm_hosted_api.h) */

static struct nvmm_hosted_vcpu *
nvmm_hosted_lookup(unsigned int machid, unsigned int cpuid)
{
	if (machid >= NVMM_MAX_MACHINES || cpuid >= NVMM_MAX_VCPUS)
		return NULL;
	return nvmm_hosted_registry[machid][cpuid];
}

int
nvmm_hosted_script(unsigned int machid, unsigned int cpuid, const void *exits, size_t n)
{
	const struct nvmm_vcpu_exit *e = exits;
	struct nvmm_hosted_vcpu *vc;
	int error = 0;
	size_t i;

	os_mtx_lock(&nvmm_hosted_registry_lock);
	vc = nvmm_hosted_lookup(machid, cpuid);
	if (vc == NULL)
		error = ENOENT;
	else if (n > NVMM_HOSTED_SCRIPT_MAX - vc->script_len)
		error = ENOBUFS;
	for (i = 0; error == 0 && i < n; i++) {
		vc->script[(vc->script_head + vc->script_len) % NVMM_HOSTED_SCRIPT_MAX] = e[i];
		vc->script_len++;
	}
	os_mtx_unlock(&nvmm_hosted_registry_lock);
	return error;
}

int
nvmm_hosted_vcpu_stats(unsigned int machid, unsigned int cpuid, unsigned long *insns,
    unsigned long *exits)
{
	struct nvmm_hosted_vcpu *vc;
	int error = 0;

	os_mtx_lock(&nvmm_hosted_registry_lock);
	vc = nvmm_hosted_lookup(machid, cpuid);
	if (vc == NULL) {
		error = ENOENT;
	} else {
		*insns = vc->insns;
		*exits = vc->exits;
	}
	os_mtx_unlock(&nvmm_hosted_registry_lock);
	return error;
}

const struct nvmm_impl nvmm_x86_svm = {
	.name = "hosted-fake",
	.ident = nvmm_hosted_ident,
	.init = nvmm_hosted_backend_init,
	.fini = nvmm_hosted_backend_fini,
	.capability = nvmm_hosted_capability,
	.mach_conf_max = NVMM_X86_MACH_NCONF,
	.mach_conf_sizes = NULL,
	.vcpu_conf_max = NVMM_X86_VCPU_NCONF,
	.vcpu_conf_sizes = nvmm_hosted_vcpu_conf_sizes,
	.state_size = sizeof(struct nvmm_x64_state),
	.machine_create = nvmm_hosted_machine_create,
	.machine_destroy = nvmm_hosted_machine_destroy,
	.machine_configure = nvmm_hosted_machine_configure,
	.vcpu_create = nvmm_hosted_vcpu_create,
	.vcpu_destroy = nvmm_hosted_vcpu_destroy,
	.vcpu_configure = nvmm_hosted_vcpu_configure,
	.vcpu_setstate = nvmm_hosted_vcpu_setstate,
	.vcpu_getstate = nvmm_hosted_vcpu_getstate,
	.vcpu_inject = nvmm_hosted_vcpu_inject,
	.vcpu_run = nvmm_hosted_vcpu_run,
};

const struct nvmm_impl nvmm_x86_vmx = {
	.name = "hosted-absent",
	.ident = nvmm_hosted_absent,
};
