// SPDX-License-Identifier: BSD-2-Clause
/*
 * CPUs: numbering, host descriptor tables for the VMCS host state, preemption and binding,
 * cross-CPU calls, CPU sets, and the host FPU and debug registers around guest execution.
 */

struct nvmm_linux_cpu nvmm_linux_cpus[NVMM_LINUX_MAXCPUS];

static_assert(sizeof(struct nvmm_linux_cpuset) == sizeof(struct cpumask),
	      "struct nvmm_linux_cpuset must mirror struct cpumask");

int nvmm_linux_curcpu_number(void)
{
	return raw_smp_processor_id();
}

static void nvmm_linux_cpus_init(void)
{
	int cpu;

	for_each_possible_cpu(cpu)
		nvmm_linux_cpus[cpu].number = cpu;
}

struct nvmm_linux_cpu *nvmm_linux_cpu_first(void)
{
	unsigned int cpu = cpumask_first(cpu_online_mask);

	return cpu < nr_cpu_ids ? &nvmm_linux_cpus[cpu] : NULL;
}

struct nvmm_linux_cpu *nvmm_linux_cpu_next(struct nvmm_linux_cpu *prev)
{
	unsigned int cpu = cpumask_next(prev->number, cpu_online_mask);

	return cpu < nr_cpu_ids ? &nvmm_linux_cpus[cpu] : NULL;
}

/*
 * Host state a VM exit reloads (Intel SDM Vol. 3C, 28.5): this CPU's TSS in its entry area, the
 * read-only GDT mapping the CPU runs on, and the IDT.
 */
unsigned long nvmm_linux_curcpu_tss(void)
{
	return (unsigned long)&get_cpu_entry_area(smp_processor_id())->tss.x86_tss;
}

unsigned long nvmm_linux_curcpu_gdt(void)
{
	return (unsigned long)get_current_gdt_ro();
}

unsigned long nvmm_linux_curcpu_idt(void)
{
	struct desc_ptr idt;

	store_idt(&idt);
	return idt.address;
}

unsigned short nvmm_linux_curcpu_tss_sel(void)
{
	return GDT_ENTRY_TSS * 8;
}

void nvmm_linux_preempt_disable(void)
{
	preempt_disable();
}

/*
 * A VM exit leaves TR with the architectural limit 0x67, which hides the I/O permission bitmap;
 * Linux reloads the full limit lazily once told.  NVMM re-enables preemption after every run.
 */
void nvmm_linux_preempt_enable(void)
{
	invalidate_tss_limit();
	preempt_enable();
}

bool nvmm_linux_preempt_disabled(void)
{
	return !preemptible();
}

int nvmm_linux_thread_bind(void)
{
	migrate_disable();
	return 0;
}

void nvmm_linux_thread_unbind(int bound)
{
	migrate_enable();
}

/* Leave the run loop for a pending signal or reschedule: the ioctl returns and comes back. */
bool nvmm_linux_return_needed(void)
{
	return signal_pending(current) || need_resched();
}

/*
 * Called with interrupts (SVM: GIF) off right before each VM entry, as KVM does in
 * kvm_vcpu_exit_request() and guest_context_enter_irqoff(): true when host work is pending
 * (a signal, a reschedule), so the caller leaves instead of entering; otherwise the CPU is
 * about to be in guest mode, which RCU counts as a quiescent state, so tell it.  Without
 * this a vCPU spinning in its guest holds off RCU grace periods until the next reschedule.
 */
bool nvmm_linux_guest_enter(void)
{
	if (signal_pending(current) || need_resched())
		return true;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	rcu_virt_note_context_switch();		/* its unused CPU argument went in 6.4 */
#else
	rcu_virt_note_context_switch(smp_processor_id());
#endif
	return false;
}

/*
 * Cross-CPU calls.  NVMM waits for them with preemption off (vmx_vmclear_remote(), the host TLB
 * invalidation), and the target CPU may be running a guest.  Any external interrupt makes a CPU
 * in guest mode exit, so the IPI normally runs the call within microseconds.  An emulated CPU may
 * not deliver it while its guest runs with interrupts disabled: Bochs 2.7 keeps maskable host
 * interrupts masked across a VM entry made with EFLAGS.IF clear in both host and guest, and the
 * caller then waits as long as that guest spins with interrupts off -- forever if the guest waits
 * for the caller's own vCPU, as a 2-vCPU Linux guest does in stop_machine().  An NMI makes a CPU
 * in guest mode exit in every case (NVMM sets NMI exiting), after which the CPU re-enables
 * interrupts and runs the call.  So a call not done within NVMM_LINUX_NUDGE_NS is followed by an
 * NMI to its CPU, claimed by nvmm_linux_nmi() if the CPU was in the host; nmi_nudges counts them.
 */
#define NVMM_LINUX_NUDGE_NS	(2 * NSEC_PER_MSEC)

static unsigned long nmi_nudges;
module_param(nmi_nudges, ulong, 0444);
MODULE_PARM_DESC(nmi_nudges, "cross-CPU calls a CPU in guest mode left waiting, ended by an NMI (read-only)");

static DEFINE_PER_CPU(atomic_t, nvmm_linux_nudged);

static int nvmm_linux_nmi(unsigned int type, struct pt_regs *regs)
{
	return atomic_xchg(this_cpu_ptr(&nvmm_linux_nudged), 0) ? NMI_HANDLED : NMI_DONE;
}

static int nvmm_linux_nmi_init(void)
{
	return register_nmi_handler(NMI_LOCAL, nvmm_linux_nmi, 0, "nvmm");
}

static void nvmm_linux_nmi_fini(void)
{
	unregister_nmi_handler(NMI_LOCAL, "nvmm");
}

struct nvmm_linux_call {
	call_single_data_t csd;
	void (*func)(void *arg);
	void *arg;
	atomic_t done;
};

static void nvmm_linux_call_run(void *info)
{
	struct nvmm_linux_call *call = info;

	call->func(call->arg);
	atomic_set_release(&call->done, 1);
}

static void nvmm_linux_call_wait(int cpu, struct nvmm_linux_call *call)
{
	u64 deadline = local_clock() + NVMM_LINUX_NUDGE_NS;

	while (!atomic_read_acquire(&call->done)) {
		cpu_relax();
		if (local_clock() < deadline)
			continue;
		atomic_set(per_cpu_ptr(&nvmm_linux_nudged, cpu), 1);
		WRITE_ONCE(nmi_nudges, READ_ONCE(nmi_nudges) + 1);
		apic->send_IPI_mask(cpumask_of(cpu), NMI_VECTOR);
		deadline = local_clock() + NVMM_LINUX_NUDGE_NS;
	}
}

void nvmm_linux_ipi_unicast(int cpu, void (*func)(void *), void *arg)
{
	struct nvmm_linux_call call = { .func = func, .arg = arg, .done = ATOMIC_INIT(0) };

	INIT_CSD(&call.csd, nvmm_linux_call_run, &call);
	preempt_disable();
	if (smp_call_function_single_async(cpu, &call.csd) == 0)
		nvmm_linux_call_wait(cpu, &call);
	else
		WARN_ONCE(1, "nvmm: CPU %d is offline, its call was not made\n", cpu);
	preempt_enable();
}

void nvmm_linux_ipi_broadcast(void (*func)(void *), void *arg)
{
	int cpu;

	preempt_disable();
	for_each_online_cpu(cpu)
		nvmm_linux_ipi_unicast(cpu, func, arg);
	preempt_enable();
}

static void nvmm_linux_nop(void *arg)
{
}

/* A CPU in guest mode exits to run the call; waiting for the call means it has. */
void nvmm_linux_ipi_kickall(void)
{
	nvmm_linux_ipi_broadcast(nvmm_linux_nop, NULL);
}

void nvmm_linux_cpuset_init(struct nvmm_linux_cpuset **set)
{
	*set = kzalloc(sizeof(**set), GFP_KERNEL_ACCOUNT | __GFP_NOFAIL);
}

void nvmm_linux_cpuset_destroy(struct nvmm_linux_cpuset *set)
{
	kfree(set);
}

void nvmm_linux_cpuset_setrunning(struct nvmm_linux_cpuset *set)
{
	const unsigned long *online = cpumask_bits(cpu_online_mask);
	int i;

	for (i = 0; i < NVMM_LINUX_CPUSET_WORDS; i++)
		__atomic_fetch_or(&set->bits[i], online[i], __ATOMIC_SEQ_CST);
}

/*
 * The FPU.  Around guest execution the host task's FPU state is saved into its fpstate by
 * kernel_fpu_begin() (Linux restores it before returning to user mode), and the registers belong
 * to the guest until kernel_fpu_end().  The guest area is in the standard XSAVE format (no
 * compaction), or the legacy FXSAVE image when the host has no XSAVE.
 */
void nvmm_linux_fpu_enter(void)
{
	kernel_fpu_begin_mask(0);
}

void nvmm_linux_fpu_leave(void)
{
	kernel_fpu_end();
}

void nvmm_linux_fpu_save(void *area, unsigned long long xsave_mask)
{
	if (xsave_mask)
		asm volatile("xsave64 %0" : "+m" (*(u8 (*)[576])area)
			     : "a" ((u32)xsave_mask), "d" ((u32)(xsave_mask >> 32)) : "memory");
	else
		asm volatile("fxsave64 %0" : "+m" (*(u8 (*)[512])area) : : "memory");
}

void nvmm_linux_fpu_restore(const void *area, unsigned long long xsave_mask)
{
	if (xsave_mask)
		asm volatile("xrstor64 %0" : : "m" (*(const u8 (*)[576])area),
			     "a" ((u32)xsave_mask), "d" ((u32)(xsave_mask >> 32)) : "memory");
	else
		asm volatile("fxrstor64 %0" : : "m" (*(const u8 (*)[512])area) : "memory");
}

/* The state components the host enabled in XCR0 (0 without XSAVE). */
unsigned long long nvmm_linux_xsave_features(void)
{
	if (!boot_cpu_has(X86_FEATURE_XSAVE))
		return 0;
	return xgetbv(XCR_XFEATURE_ENABLED_MASK);
}

static unsigned int nvmm_linux_mxcsr_mask;

/* MXCSR_MASK from an FXSAVE image; 0 there means the default 0xffbf (Intel SDM Vol. 1, 11.6.6). */
static void nvmm_linux_fpu_init(void)
{
	static struct fxregs_state fx __aligned(16);

	kernel_fpu_begin();
	asm volatile("fxsave64 %0" : "=m" (fx));
	kernel_fpu_end();
	nvmm_linux_mxcsr_mask = fx.mxcsr_mask ? fx.mxcsr_mask : 0xffbf;
}

unsigned int nvmm_linux_fpu_mxcsr_mask(void)
{
	return nvmm_linux_mxcsr_mask;
}

/*
 * Debug registers.  Linux keeps the host's breakpoints (perf and ptrace) per CPU and reloads them
 * with hw_breakpoint_restore(), so nothing needs saving; restoring also resets DR6.
 */
void nvmm_linux_dbregs_save(unsigned long *drs)
{
}

void nvmm_linux_dbregs_restore(const unsigned long *drs)
{
	hw_breakpoint_restore();
}
