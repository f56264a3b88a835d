// SPDX-License-Identifier: BSD-2-Clause
/*
 * CPUs for NVMM on Haiku: numbering, the host descriptor tables a VM exit
 * reloads, preemption and thread pinning, cross-CPU calls, CPU sets, and the
 * host FPU around guest execution.
 *
 * Preemption: cpu_ent::reschedule_disabled makes scheduler_reschedule() keep
 * the running thread when it would only have been preempted; it is counted
 * here per CPU (a thread that disabled preemption cannot leave its CPU, so
 * the count is the thread's).  An interrupt that wanted to reschedule leaves
 * cpu_ent::invoke_scheduler set: NVMM's run loops see it through
 * os_return_needed() and the reschedule happens when preemption is enabled
 * again.
 *
 * FPU: Haiku x86_64 saves a thread's user FPU state only on interrupts and
 * exceptions from user mode; during a system call (an NVMM ioctl) the
 * registers hold what the thread left there, and a context switch keeps only
 * the x87 control word and MXCSR.  Interrupts taken in kernel mode save and
 * restore the whole FPU on their stack.  So the guest may own the registers
 * between nvmm_haiku_fpu_enter() and nvmm_haiku_fpu_leave(), which run with
 * interrupts disabled: the registers are saved into this CPU's host area
 * (XSAVE with the host's XCR0, Intel SDM Vol. 1 13.7; FXSAVE without XSAVE)
 * and restored from it, so no guest state reaches the host thread.
 */

#include <string.h>

#include <KernelExport.h>
#include <OS.h>

#include <arch/x86/arch_cpu.h>
#include <cpu.h>
#include <kscheduler.h>
#include <smp.h>
#include <thread.h>
#include <thread_types.h>

#include "nvmm_haiku.h"
#include "nvmm_haiku_glue.h"


static_assert(NVMM_HAIKU_MAXCPUS == SMP_MAX_CPUS,
	"NVMM_HAIKU_MAXCPUS in nvmm_haiku.h must be Haiku's SMP_MAX_CPUS");

extern "C" {
nvmm_haiku_cpu nvmm_haiku_cpus[NVMM_HAIKU_MAXCPUS];
}


void
nvmm_haiku_cpus_init(void)
{
	for (int i = 0; i < NVMM_HAIKU_MAXCPUS; i++)
		nvmm_haiku_cpus[i].number = i;
}


extern "C" int
nvmm_haiku_ncpus(void)
{
	return smp_get_num_cpus();
}


extern "C" int
nvmm_haiku_curcpu_number(void)
{
	return smp_get_current_cpu();
}


/*!	Host state a VM exit reloads (Intel SDM Vol. 3C, 28.5): this CPU's TSS,
	kept in its cpu_ent; the GDT and IDT, which Haiku x86_64 shares between
	all CPUs, read back with SGDT/SIDT.
*/
extern "C" unsigned long
nvmm_haiku_curcpu_tss(void)
{
	return (unsigned long)&gCPU[smp_get_current_cpu()].arch.tss;
}


struct [[gnu::packed]] nvmm_descriptor_register {
	uint16	limit;
	uint64	base;
};


extern "C" unsigned long
nvmm_haiku_curcpu_gdt(void)
{
	nvmm_descriptor_register gdtr;

	asm volatile("sgdt %0" : "=m" (gdtr));
	return gdtr.base;
}


extern "C" unsigned long
nvmm_haiku_curcpu_idt(void)
{
	nvmm_descriptor_register idtr;

	asm volatile("sidt %0" : "=m" (idtr));
	return idtr.base;
}


extern "C" unsigned short
nvmm_haiku_curcpu_tss_sel(void)
{
	uint16 selector;

	asm volatile("str %0" : "=r" (selector));
	return selector;
}


extern "C" void
nvmm_haiku_preempt_disable(void)
{
	cpu_status interrupts = disable_interrupts();
	cpu_ent* cpu = get_cpu_struct();

	if (cpu->reschedule_disabled == UINT8_MAX)
		panic("nvmm: preemption disabled too deeply");
	cpu->reschedule_disabled++;
	restore_interrupts(interrupts);
}


extern "C" void
nvmm_haiku_preempt_enable(void)
{
	cpu_status interrupts = disable_interrupts();
	cpu_ent* cpu = get_cpu_struct();

	if (cpu->reschedule_disabled == 0)
		panic("nvmm: preemption enabled more often than disabled");
	cpu->reschedule_disabled--;
	bool pending = cpu->reschedule_disabled == 0
		&& atomic_get(&cpu->invoke_scheduler) != 0;
	restore_interrupts(interrupts);

	// A reschedule an interrupt asked for while preemption was off.
	if (pending)
		scheduler_reschedule_if_necessary();
}


extern "C" bool
nvmm_haiku_preempt_disabled(void)
{
	if (!are_interrupts_enabled())
		return true;

	cpu_status interrupts = disable_interrupts();
	bool disabled = get_cpu_struct()->reschedule_disabled != 0;
	restore_interrupts(interrupts);
	return disabled;
}


/*!	Keeps the calling thread on its CPU (preemption may be on). */
extern "C" int
nvmm_haiku_thread_bind(void)
{
	Thread* self = thread_get_current_thread();
	thread_pin_to_current_cpu(self);
	return 0;
}


extern "C" void
nvmm_haiku_thread_unbind(int bound)
{
	Thread* self = thread_get_current_thread();
	thread_unpin_from_current_cpu(self);
}


/*!	Host work is pending for the calling thread: a signal to deliver (the
	flag the system call exit path tests) or a reschedule an interrupt asked
	for.  NVMM then returns from the run ioctl and comes back.
*/
static inline bool
host_work_pending(void)
{
	Thread* self = thread_get_current_thread();

	return (atomic_get(&self->flags) & THREAD_FLAGS_SIGNALS_PENDING) != 0
		|| atomic_get(&self->cpu->invoke_scheduler) != 0;
}


extern "C" bool
nvmm_haiku_return_needed(void)
{
	return host_work_pending();
}


/*!	Called with interrupts off right before each VM entry: true when the
	caller should leave instead of entering the guest.  An interrupt arriving
	after this check makes the guest exit at once.
*/
extern "C" bool
nvmm_haiku_guest_enter(void)
{
	return host_work_pending();
}


extern "C" void
nvmm_haiku_ipi_unicast(int cpu, void (*func)(void*, int), void* arg)
{
	call_single_cpu_sync(cpu, func, arg);
}


extern "C" void
nvmm_haiku_ipi_broadcast(void (*func)(void*, int), void* arg)
{
	call_all_cpus_sync(func, arg);
}


static void
nop_on_cpu(void* arg, int cpu)
{
}


/*!	Any interrupt makes a CPU in guest mode exit; waiting for the call means
	it has.
*/
extern "C" void
nvmm_haiku_ipi_kickall(void)
{
	call_all_cpus_sync(nop_on_cpu, NULL);
}


extern "C" void
nvmm_haiku_cpuset_init(nvmm_haiku_cpuset** set)
{
	*set = (nvmm_haiku_cpuset*)nvmm_haiku_mem_alloc(sizeof(**set), true);
}


extern "C" void
nvmm_haiku_cpuset_destroy(nvmm_haiku_cpuset* set)
{
	nvmm_haiku_mem_free(set, sizeof(*set));
}


extern "C" void
nvmm_haiku_cpuset_setrunning(nvmm_haiku_cpuset* set)
{
	int32 count = smp_get_num_cpus();

	for (int32 i = 0; i < count; i++) {
		__atomic_fetch_or(&set->bits[i / 64], 1UL << (i % 64),
			__ATOMIC_SEQ_CST);
	}
}


// #pragma mark - FPU


static const uint32 kCPUID1EcxOSXSAVE = 1u << 27;
	// CPUID.1:ECX bit 27, XSAVE enabled by the OS (Intel SDM Vol. 2A, CPUID)

static uint64 sHostXcr0;		// XCR0 as Haiku set it, 0 without XSAVE
static uint32 sHostAreaSize;	// bytes of one host save area
static uint32 sMxcsrMask;
static area_id sHostArea = -1;
static uint8* sHostAreas;		// one area per CPU, 64-byte aligned


static inline void
cpuid_count(uint32 leaf, uint32 subleaf, uint32* regs)
{
	asm volatile("cpuid"
		: "=a" (regs[0]), "=b" (regs[1]), "=c" (regs[2]), "=d" (regs[3])
		: "a" (leaf), "c" (subleaf));
}


static inline uint64
read_xcr(uint32 index)
{
	uint32 low, high;

	asm volatile("xgetbv" : "=a" (low), "=d" (high) : "c" (index));
	return low | ((uint64)high << 32);
}


static inline void
save_area(void* area, uint64 mask)
{
	if (mask != 0) {
		asm volatile("xsave64 %0"
			: "+m" (*(uint8 (*)[576])area)
			: "a" ((uint32)mask), "d" ((uint32)(mask >> 32))
			: "memory");
	} else
		asm volatile("fxsave64 %0" : "=m" (*(uint8 (*)[512])area) : : "memory");
}


static inline void
restore_area(const void* area, uint64 mask)
{
	if (mask != 0) {
		asm volatile("xrstor64 %0"
			: : "m" (*(const uint8 (*)[576])area),
				"a" ((uint32)mask), "d" ((uint32)(mask >> 32))
			: "memory");
	} else {
		asm volatile("fxrstor64 %0" : : "m" (*(const uint8 (*)[512])area)
			: "memory");
	}
}


/*!	Finds the host's XSAVE features, the size of their standard-format save
	area (CPUID.(EAX=0DH,ECX=0):EBX, Intel SDM Vol. 1 13.2), and MXCSR_MASK
	(an FXSAVE image's bytes 28-31, 0 meaning the default 0xffbf, Intel SDM
	Vol. 1 11.6.6), and allocates the per-CPU host areas.
*/
status_t
nvmm_haiku_fpu_init(void)
{
	uint32 regs[4];

	cpuid_count(1, 0, regs);
	if ((regs[2] & kCPUID1EcxOSXSAVE) != 0) {
		sHostXcr0 = read_xcr(0);
		cpuid_count(0xd, 0, regs);
		sHostAreaSize = regs[1];
	} else {
		sHostXcr0 = 0;
		sHostAreaSize = 512;
	}
	sHostAreaSize = (sHostAreaSize + 63) & ~(uint32)63;

	static uint8 fxImage[512] __attribute__((aligned(16)));
	cpu_status interrupts = disable_interrupts();
	asm volatile("fxsave64 %0" : "=m" (fxImage));
	restore_interrupts(interrupts);
	uint32 mask;
	memcpy(&mask, fxImage + 28, sizeof(mask));
	sMxcsrMask = mask != 0 ? mask : 0xffbf;

	size_t size = (size_t)sHostAreaSize * smp_get_num_cpus();
	size = (size + B_PAGE_SIZE - 1) & ~(size_t)(B_PAGE_SIZE - 1);
	void* address;
	sHostArea = create_area("nvmm host fpu", &address, B_ANY_KERNEL_ADDRESS,
		size, B_FULL_LOCK, kKernelReadWrite);
	if (sHostArea < 0)
		return sHostArea;
	memset(address, 0, size);
	sHostAreas = (uint8*)address;
	return B_OK;
}


void
nvmm_haiku_fpu_uninit(void)
{
	if (sHostArea >= 0)
		delete_area(sHostArea);
	sHostArea = -1;
	sHostAreas = NULL;
}


/*!	The window around a VM entry also keeps this CPU's GDTR and IDTR: a VMX
	exit sets both limits to 0xffff (Intel SDM Vol. 3C, 28.5.2), which would
	let a selector past the end of the GDT load whatever memory follows it.
	They are put back as they were before the entry (SVM leaves them alone;
	reloading the same values costs little).
*/
struct host_tables {
	nvmm_descriptor_register	gdtr;
	nvmm_descriptor_register	idtr;
};

static host_tables sHostTables[SMP_MAX_CPUS];


extern "C" void
nvmm_haiku_fpu_enter(void)
{
	int cpu = smp_get_current_cpu();

	asm volatile("sgdt %0" : "=m" (sHostTables[cpu].gdtr));
	asm volatile("sidt %0" : "=m" (sHostTables[cpu].idtr));
	save_area(sHostAreas + (size_t)sHostAreaSize * cpu, sHostXcr0);
}


extern "C" void
nvmm_haiku_fpu_leave(void)
{
	int cpu = smp_get_current_cpu();

	asm volatile("lgdt %0" : : "m" (sHostTables[cpu].gdtr));
	asm volatile("lidt %0" : : "m" (sHostTables[cpu].idtr));
	restore_area(sHostAreas + (size_t)sHostAreaSize * cpu, sHostXcr0);
}


/*!	The guest's area: the standard XSAVE format (no compaction) with its
	state components, or the legacy FXSAVE image when there is no XSAVE.
*/
extern "C" void
nvmm_haiku_fpu_save(void* area, unsigned long long xsave_mask)
{
	save_area(area, xsave_mask);
}


extern "C" void
nvmm_haiku_fpu_restore(const void* area, unsigned long long xsave_mask)
{
	restore_area(area, xsave_mask);
}


extern "C" unsigned long long
nvmm_haiku_xsave_features(void)
{
	return sHostXcr0;
}


extern "C" unsigned int
nvmm_haiku_fpu_mxcsr_mask(void)
{
	return sMxcsrMask;
}
