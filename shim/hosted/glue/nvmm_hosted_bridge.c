// SPDX-License-Identifier: BSD-2-Clause
/*
 * Upstream's entry points for the hosted device glue.
 *
 * Part of the hosted target, but compiled in upstream's world (-D_KERNEL, the generated BSD compat
 * headers, the rendered nvmm_os.h), so it can use NVMM's own types and BSD names: owners, the
 * ioctl entry point, init/fini, and the translation of the BSD error numbers NVMM returns into
 * the host's (the process runs on Linux).  Including nvmm_hosted.h next to upstream's headers
 * also makes the compiler check that the plain-C declarations of the glue agree with upstream's
 * prototypes.
 */

#include "nvmm.h"
#include "nvmm_internal.h"
#include "nvmm_ioctl.h"
#include "nvmm_hosted.h"

/*
 * BSD error numbers 1 to 34 are Linux's too (EPERM ... ERANGE); above that the two numberings
 * differ.  Linux's values from include/uapi/asm-generic/errno.h.
 */
static int
nvmm_hosted_errno(int error)
{
	if (error >= 0 && error <= 34)
		return error;
	switch (error) {
	case EAGAIN:
		return 11;
	case ENOBUFS:
		return 105;
	case ENOTSUP:
		return 95;		/* EOPNOTSUPP */
	default:
		os_printf("nvmm: unexpected error %d, reported as EINVAL\n", error);
		return 22;		/* EINVAL */
	}
}

int
nvmm_hosted_init(void)
{
	return nvmm_hosted_errno(nvmm_init());
}

void
nvmm_hosted_fini(void)
{
	nvmm_fini();
}

const char *
nvmm_hosted_backend_name(void)
{
	return nvmm_impl != NULL ? nvmm_impl->name : "none";
}

struct nvmm_owner *
nvmm_hosted_owner_alloc(int pid)
{
	struct nvmm_owner *owner;

	owner = os_mem_zalloc(sizeof(*owner));
	owner->pid = pid;
	return owner;
}

struct nvmm_owner *
nvmm_hosted_root_owner(void)
{
	return &nvmm_root_owner;
}

/* A file is being released: its machines die with it (the root owner's outlive any one file). */
void
nvmm_hosted_owner_free(struct nvmm_owner *owner)
{
	if (owner == &nvmm_root_owner)
		return;
	nvmm_kill_machines(owner);
	os_mem_free(owner, sizeof(*owner));
}

/* The root owner's machines outlive every file: a fresh system has none. */
void
nvmm_hosted_kill_root_machines(void)
{
	nvmm_kill_machines(&nvmm_root_owner);
}

int
nvmm_hosted_kernel_ioctl(struct nvmm_owner *owner, unsigned long cmd, void *data)
{
	return nvmm_hosted_errno(nvmm_ioctl(owner, cmd, data));
}
