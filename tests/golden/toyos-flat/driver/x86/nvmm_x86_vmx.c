/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/mman.h>

#include "nvmm.h"
#include "nvmm_internal.h"
#include "nvmm_ioctl.h"
#include "nvmm_x86.h"

/* Implemented in nvmm_x86_vmxfunc.S. */
int vmx_vmlaunch(uint64_t *gprs);

struct vmx_fpu_image {
	uint64_t header;
	uint32_t mxcsr;
} __packed;

struct vmx_cpudata {
	uint64_t gprs[16];
	uint64_t host_efer;
	uint64_t host_pat;
	unsigned int tlb_want_flush;
	os_cpu_t *host_cpu;
	void *vmcs;
	struct vmx_fpu_image gfpu __aligned(64);
};

static unsigned int vmx_cpus_ready;
static char vmx_cpu_has_vmxe[OS_MAXCPUS];
static uint64_t vmx_revision;

static void
vmx_vcpu_guest_fpu_enter(struct vmx_cpudata *cpudata)
{
#line 156 "toyos/target.toml"
	toy_fpu_enter();
#line 41 "driver/x86/nvmm_x86_vmx.c"
}


static int
vmx_vcpu_run(struct nvmm_machine *mach, uint32_t cpuid,
    struct nvmm_x86_exit *exitinfo)
{
	struct vmx_cpudata *cpudata = mach->machdata;
	int ret;

	vmx_vcpu_guest_fpu_enter(cpudata);
	cpudata->host_efer = rdmsr(MSR_EFER);
	cpudata->host_pat = rdmsr(MSR_CR_PAT);
	wrmsr(MSR_EFER, cpudata->host_efer | EFER_LME);
	ret = vmx_vmlaunch(cpudata->gprs);
	wrmsr(MSR_CR_PAT, cpudata->host_pat);
#line 165 "toyos/target.toml"
	toy_fpu_leave();
#line 60 "driver/x86/nvmm_x86_vmx.c"
	exitinfo->reason = (ret == 0) ? NVMM_EXIT_IO : NVMM_EXIT_NONE;
	exitinfo->qual = cpuid;
	return 0;
}

static int
vmx_ident(void)
{
	uint32_t regs[4];

	x86_get_cpuid(1, regs);
	if (__predict_true((regs[2] & NVMM_CPUID1_VMX) != 0))
		return 1;
	return 0;
}

static OS_IPI_FUNC(vmx_change_cpu)
{
	uint64_t cr0 = x86_get_cr0();

	OS_ASSERT((cr0 & CR0_PG) != 0);
	if (x86_get_cr4() & CR4_VMXE)
		vmx_cpu_has_vmxe[os_curcpu_number()] = 1;
	os_atomic_inc_uint(&vmx_cpus_ready);
}

static void
vmx_init(void)
{
	int bound;

	bound = curlwp_bind();
	vmx_revision = rdmsr(NVMM_MSR_VMX_BASIC) & NVMM_VMX_BASIC_REVID;
	curlwp_bindx(bound);
	os_ipi_broadcast(vmx_change_cpu, NULL);
	os_printf("vmx: %u cpus ready\n", vmx_cpus_ready);
}

static int
vmx_mach_create(struct nvmm_machine *mach)
{
	struct vmx_cpudata *cpudata = mach->machdata;

	cpudata->host_cpu = NULL;
	cpudata->vmcs = os_pagemem_zalloc(PAGE_SIZE);
	if (cpudata->vmcs == NULL)
		return ENOMEM;
	return 0;
}

static void
vmx_mach_destroy(struct nvmm_machine *mach)
{
	struct vmx_cpudata *cpudata = mach->machdata;

	os_pagemem_free(cpudata->vmcs, PAGE_SIZE);
}

const struct nvmm_impl nvmm_vmx_backend = {
	.name = "x86-vmx",
	.machdata_size = sizeof(struct vmx_cpudata),
	.ident = vmx_ident,
	.init = vmx_init,
	.machine_create = vmx_mach_create,
	.machine_destroy = vmx_mach_destroy,
	.vcpu_run = vmx_vcpu_run,
};
