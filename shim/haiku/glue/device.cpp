// SPDX-License-Identifier: BSD-2-Clause
/*
 * The NVMM device for Haiku: a legacy driver (Drivers.h) publishing
 * /dev/misc/nvmm, and /dev/nvmm for the same device, the path upstream's
 * libnvmm opens (it has no variation point there, and upstream stays
 * untouched); one NVMM owner per open file (its cookie), and the ioctls.
 *
 * Commands use the BSD encoding (sys/ioccom.h: direction in bits 31:29,
 * parameter size in bits 28:16), which both libnvmm, built against the
 * compat headers or Haiku's headers/compatibility/bsd/sys/ioccom.h, and
 * upstream's nvmm_ioctl.h use; Haiku's ioctl() passes the command through
 * unchanged, so the parameter block is copied in and out here as the
 * command's direction says.  A write-only open is the root owner (libnvmm's
 * root mode, nvmmctl), which acts on every machine: root only.  Errors are
 * Haiku status codes.
 */

#include <stdlib.h>
#include <string.h>

#include <Drivers.h>
#include <KernelExport.h>
#include <OS.h>

#include <arch/x86/arch_cpu.h>
#include <fcntl.h>
#include <kernel.h>
#include <smp.h>
#include <team.h>
#include <thread.h>
#include <thread_types.h>

#include "nvmm_haiku.h"
#include "nvmm_haiku_glue.h"


// BSD command encoding (ioctl(2))
static const uint32 kIocOut = 0x40000000;
static const uint32 kIocIn = 0x80000000;
static const uint32 kIocParamMask = 0x1fff;
static const uint32 kIocParamShift = 16;
static const uint32 kIocGroupShift = 8;
static const uint32 kNvmmGroup = 'N';

static const char* sDeviceNames[] = { "misc/nvmm", "nvmm", NULL };

int32 api_version = B_CUR_DRIVER_API_VERSION;


static status_t
nvmm_open(const char* name, uint32 flags, void** cookie)
{
	if ((flags & O_RWMASK) == O_WRONLY) {
		if (thread_get_current_thread()->team->effective_uid != 0)
			return B_PERMISSION_DENIED;
		*cookie = nvmm_haiku_root_owner();
	} else
		*cookie = nvmm_haiku_owner_alloc(team_get_current_team_id());
	return B_OK;
}


static status_t
nvmm_close(void* cookie)
{
	return B_OK;
}


/*!	The last operation on the file is over: its machines die with it (the
	root owner's outlive any one file).
*/
static status_t
nvmm_free(void* cookie)
{
	nvmm_haiku_owner_free((nvmm_owner*)cookie);
	return B_OK;
}


static status_t
nvmm_control(void* cookie, uint32 op, void* buffer, size_t length)
{
	if (((op >> kIocGroupShift) & 0xff) != kNvmmGroup)
		return B_DEV_INVALID_IOCTL;

	size_t size = (op >> kIocParamShift) & kIocParamMask;
	bool in = (op & kIocIn) != 0;
	bool out = (op & kIocOut) != 0;
	if (size != 0 && !is_user_address_range(buffer, size))
		return B_BAD_ADDRESS;

	void* data = calloc(1, size != 0 ? size : 1);
	if (data == NULL)
		return B_NO_MEMORY;

	status_t status = B_OK;
	if (in && size != 0 && user_memcpy(data, buffer, size) != B_OK)
		status = B_BAD_ADDRESS;
	if (status == B_OK) {
		status = nvmm_haiku_status(
			nvmm_haiku_ioctl((nvmm_owner*)cookie, op, data));
	}
	if (status == B_OK && out && size != 0
		&& user_memcpy(buffer, data, size) != B_OK) {
		status = B_BAD_ADDRESS;
	}
	free(data);
	return status;
}


static status_t
nvmm_read(void* cookie, off_t position, void* buffer, size_t* length)
{
	*length = 0;
	return B_NOT_SUPPORTED;
}


static status_t
nvmm_write(void* cookie, off_t position, const void* buffer, size_t* length)
{
	*length = 0;
	return B_NOT_SUPPORTED;
}


static device_hooks sHooks = {
	nvmm_open,
	nvmm_close,
	nvmm_free,
	nvmm_control,
	nvmm_read,
	nvmm_write,
	NULL,
	NULL,
	NULL,
	NULL
};


/*!	VMX or SVM already switched on means another hypervisor owns the CPU:
	Intel SDM Vol. 3C 24.7 (CR4.VMXE), AMD APM Vol. 2 15.4 (EFER.SVME).
*/
static void
check_cpu(void* arg, int cpu)
{
	static const uint64 kEferSvme = 1ULL << 12;

	if ((x86_read_cr4() & IA32_CR4_VMXE) != 0
		|| (x86_read_msr(IA32_MSR_EFER) & kEferSvme) != 0) {
		atomic_add((int32*)arg, 1);
	}
}


extern "C" status_t
init_hardware(void)
{
	return nvmm_haiku_ident() ? B_OK : B_ERROR;
}


extern "C" const char**
publish_devices(void)
{
	return sDeviceNames;
}


extern "C" device_hooks*
find_device(const char* name)
{
	for (int32 i = 0; sDeviceNames[i] != NULL; i++) {
		if (strcmp(name, sDeviceNames[i]) == 0)
			return &sHooks;
	}
	return NULL;
}


extern "C" status_t
init_driver(void)
{
	nvmm_haiku_cpus_init();
	status_t status = nvmm_haiku_fpu_init();
	if (status != B_OK)
		return status;

	int32 busy = 0;
	call_all_cpus_sync(check_cpu, &busy);
	if (busy != 0) {
		dprintf("nvmm: VMX/SVM is already in use on %" B_PRId32 " CPU(s)\n",
			busy);
		nvmm_haiku_fpu_uninit();
		return B_BUSY;
	}

	status = nvmm_haiku_status(nvmm_haiku_init());
	if (status != B_OK) {
		dprintf("nvmm: no usable VMX (with EPT) or SVM (with NPT)\n");
		nvmm_haiku_fpu_uninit();
		return status;
	}
	dprintf("nvmm: loaded, backend %s, %" B_PRId32 " CPU(s)\n",
		nvmm_haiku_backend_name(), smp_get_num_cpus());
	return B_OK;
}


extern "C" void
uninit_driver(void)
{
	nvmm_haiku_fini();
	nvmm_haiku_fpu_uninit();
	dprintf("nvmm: unloaded\n");
}
