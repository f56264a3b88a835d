/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/mman.h>

#include "nvmm.h"
#include "nvmm_internal.h"
#include "nvmm_ioctl.h"

static const struct nvmm_impl *nvmm_backends[] = {
#if defined(__x86_64__)
	&nvmm_vmx_backend,
#endif
};

static const struct nvmm_impl *nvmm_impl = NULL;
static struct nvmm_machine machines[NVMM_MAX_MACHINES];	/* by id */
static unsigned int nmachines_created;

static int
nvmm_capability(struct nvmm_ioc_capability *args)
{
	memset(&args->cap, 0, sizeof(args->cap));
	args->cap.version = NVMM_KERN_VERSION;
	args->cap.state_size = uimin(sizeof(struct nvmm_x86_exit), PAGE_SIZE);
	args->cap.max_ram = NVMM_MAX_RAM;
	return 0;
}

static int
nvmm_machine_create(struct nvmm_ioc_machine_create *args)
{
	struct nvmm_machine_conf conf;
	struct nvmm_machine *mach = NULL;
	size_t slot;
	int error;

	error = copyin(args->conf, &conf, sizeof(conf));
	if (error != 0)
		return error;
	for (slot = 0; slot < __arraycount(machines); slot++) {
		os_mtx_lock(&machines[slot].lock);
		if (!machines[slot].present) {
			mach = &machines[slot];
			break;
		}
		os_mtx_unlock(&machines[slot].lock);
	}
	if (mach == NULL)
		return ENOMEM;
	mach->present = 1;
	mach->owner = curproc->p_pid;
	mach->ram_size = roundup(conf.ram_size, PAGE_SIZE);
	mach->vm = os_vmspace_create(0, mach->ram_size);
	mach->machdata = os_mem_zalloc(nvmm_impl->machdata_size);
	error = nvmm_impl->machine_create(mach);
	if (error) {
		os_mem_free(mach->machdata, nvmm_impl->machdata_size);
		mach->present = 0;
	} else {
		args->machid = (uint32_t)slot;
		os_atomic_inc_uint(&nmachines_created);
	}
	os_mtx_unlock(&mach->lock);
	return error;
}

static int
nvmm_machine_destroy(struct nvmm_ioc_machine_destroy *args)
{
	struct nvmm_machine *mach;

	if (__predict_false(args->machid >= __arraycount(machines)))
		return EINVAL;
	mach = &machines[args->machid];
	os_mtx_lock(&mach->lock);
	if (!mach->present || mach->owner != curproc->p_pid) {
		os_mtx_unlock(&mach->lock);
		return EPERM;
	}
	nvmm_impl->machine_destroy(mach);
	os_mem_free(mach->machdata, nvmm_impl->machdata_size);
	mach->present = 0;
	os_mtx_unlock(&mach->lock);
	return 0;
}

static int
nvmm_vcpu_run(struct nvmm_ioc_vcpu_run *args)
{
	struct nvmm_machine *mach;
	vm_prot_t prot = PROT_READ | PROT_WRITE;
	vaddr_t gpa;
	int error;

	if (args->machid >= __arraycount(machines))
		return EINVAL;
	mach = &machines[args->machid];
	OS_ASSERT(mach->present);

	do {
		if (os_return_needed())
			return 0;
		error = nvmm_impl->vcpu_run(mach, args->cpuid, &args->exitinfo);
		if (error || args->exitinfo.reason != NVMM_EXIT_MEMORY)
			return error;
		gpa = (vaddr_t)args->exitinfo.qual;
	} while (os_vmspace_fault(mach->vm, gpa, prot) == 0);
	return EINVAL;
}

int
nvmm_ioctl(unsigned long cmd, void *data)
{
	switch (cmd) {
	case NVMM_IOC_CAPABILITY:
		return nvmm_capability(data);
	case NVMM_IOC_MACHINE_CREATE:
		return nvmm_machine_create(data);
	case NVMM_IOC_MACHINE_DESTROY:
		return nvmm_machine_destroy(data);
	case NVMM_IOC_VCPU_RUN:
		return nvmm_vcpu_run(data);
	default:
		return EINVAL;
	}
}

int
nvmm_init(void)
{
	size_t i;

	OS_ASSERT(os_kernel_map != NULL);
	for (i = 0; i < __arraycount(nvmm_backends); i++) {
		if (nvmm_backends[i]->ident()) {
			nvmm_impl = nvmm_backends[i];
			break;
		}
	}
	if (nvmm_impl == NULL)
		return ENOMEM;
	for (i = 0; i < __arraycount(machines); i++)
		os_mtx_init(&machines[i].lock);
	nvmm_impl->init();
	os_printf("nvmm: using the %s backend\n", nvmm_impl->name);
	return 0;
}
