/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

#include <sys/cdefs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>

#include "nvmm.h"


/* Every machine this process created, so that it can be found again. */
struct mach_track {
	struct nvmm_machine *mach;
	LIST_ENTRY(mach_track) link;
};

static LIST_HEAD(, mach_track) tracked;
static int nvmm_fd = -1;

int
nvmm_init(void)
{
	struct nvmm_ioc_capability args;

	if (nvmm_fd != -1)
		return 0;
	nvmm_fd = open("/dev/nvmm", O_CLOEXEC | O_RDONLY);
	if (nvmm_fd == -1)
		return -1;
	if (ioctl(nvmm_fd, NVMM_IOC_CAPABILITY, &args) == -1)
		goto fail;
	if (args.cap.version != NVMM_KERN_VERSION) {
		errno = EPROGMISMATCH;
		goto fail;
	}
	return 0;
fail:
	close(nvmm_fd);
	nvmm_fd = -1;
	return -1;
}

static void
nvmm_conf_init(struct nvmm_machine_conf *conf, uint64_t ram_size,
    int flags __unused)
{
	memset(conf, 0, sizeof(*conf));
	conf->ram_size = ram_size;
}

int
nvmm_machine_create(struct nvmm_machine *mach, uint64_t ram_size)
{
	struct nvmm_ioc_machine_create args;
	struct nvmm_machine_conf conf;
	struct mach_track *entry;

	entry = malloc(sizeof(*entry));
	if (entry == NULL)
		return -1;
	nvmm_conf_init(&conf, ram_size, 0);
	args.conf = &conf;
	if (ioctl(nvmm_fd, NVMM_IOC_MACHINE_CREATE, &args) == -1) {
		free(entry);
		return -1;
	}
	mach->machid = args.machid;
	mach->ram_size = ram_size;
	entry->mach = mach;
	LIST_INSERT_HEAD(&tracked, entry, link);
	return 0;
}

int
nvmm_machine_release(struct nvmm_machine *mach)
{
	struct nvmm_ioc_machine_destroy args;
	struct mach_track *entry, *next;

	args.machid = mach->machid;
	if (ioctl(nvmm_fd, NVMM_IOC_MACHINE_DESTROY, &args) == -1)
		return -1;
	LIST_FOREACH_SAFE(entry, &tracked, link, next) {
		if (entry->mach == mach) {
			LIST_REMOVE(entry, link);
			free(entry);
		}
	}
	return 0;
}

int
nvmm_vcpu_run(struct nvmm_machine *mach, uint32_t cpuid,
    struct nvmm_x86_exit *exitinfo)
{
	struct nvmm_ioc_vcpu_run args;

	args.machid = mach->machid;
	args.cpuid = cpuid;
	if (ioctl(nvmm_fd, NVMM_IOC_VCPU_RUN, &args) == -1)
		return -1;
	*exitinfo = args.exitinfo;
	return 0;
}
