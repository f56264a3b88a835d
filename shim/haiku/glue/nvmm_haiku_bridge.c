// SPDX-License-Identifier: BSD-2-Clause
/*
 * Upstream's entry points for the Haiku device glue.
 *
 * Part of the Haiku port, compiled in upstream's world (-D_KERNEL, the
 * generated BSD compat headers, the rendered nvmm_os.h), so it can use NVMM's
 * own types and BSD names: owners, the ioctl entry point, init/fini.  Errors
 * stay BSD numbers; device.cpp turns them into Haiku status codes.  Including
 * nvmm_haiku.h next to upstream's headers makes the compiler check that the
 * plain C declarations of the glue agree with upstream's prototypes, and the
 * assertions below that the BSD numbers the glue returns are the compat
 * layer's.
 */

#include "nvmm.h"
#include "nvmm_internal.h"
#include "nvmm_ioctl.h"
#include "nvmm_haiku.h"

_Static_assert(NVMM_HAIKU_EPERM == EPERM, "EPERM");
_Static_assert(NVMM_HAIKU_ENOENT == ENOENT, "ENOENT");
_Static_assert(NVMM_HAIKU_EIO == EIO, "EIO");
_Static_assert(NVMM_HAIKU_ENOMEM == ENOMEM, "ENOMEM");
_Static_assert(NVMM_HAIKU_EACCES == EACCES, "EACCES");
_Static_assert(NVMM_HAIKU_EFAULT == EFAULT, "EFAULT");
_Static_assert(NVMM_HAIKU_EBUSY == EBUSY, "EBUSY");
_Static_assert(NVMM_HAIKU_EEXIST == EEXIST, "EEXIST");
_Static_assert(NVMM_HAIKU_EINVAL == EINVAL, "EINVAL");
_Static_assert(NVMM_HAIKU_EAGAIN == EAGAIN, "EAGAIN");
_Static_assert(NVMM_HAIKU_ENOBUFS == ENOBUFS, "ENOBUFS");
_Static_assert(NVMM_HAIKU_ENOTSUP == ENOTSUP, "ENOTSUP");

int
nvmm_haiku_init(void)
{
	return nvmm_init();
}

void
nvmm_haiku_fini(void)
{
	nvmm_fini();
}

nvmm_haiku_bool
nvmm_haiku_ident(void)
{
	return nvmm_ident() != NULL;
}

const char *
nvmm_haiku_backend_name(void)
{
	return nvmm_impl != NULL ? nvmm_impl->name : "none";
}

struct nvmm_owner *
nvmm_haiku_owner_alloc(int pid)
{
	struct nvmm_owner *owner;

	owner = os_mem_zalloc(sizeof(*owner));
	owner->pid = pid;
	return owner;
}

struct nvmm_owner *
nvmm_haiku_root_owner(void)
{
	return &nvmm_root_owner;
}

/*
 * A file is gone: the machines it owns die with it.  A file opened as root
 * owns every machine; the root owner itself is static and never freed.
 */
void
nvmm_haiku_owner_free(struct nvmm_owner *owner)
{
	nvmm_kill_machines(owner);
	if (owner != &nvmm_root_owner)
		os_mem_free(owner, sizeof(*owner));
}

int
nvmm_haiku_ioctl(struct nvmm_owner *owner, unsigned long cmd, void *data)
{
	return nvmm_ioctl(owner, cmd, data);
}
