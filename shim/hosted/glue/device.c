// SPDX-License-Identifier: BSD-2-Clause
/*
 * The in-process device: what /dev/nvmm is to a process on a kernel target.  libnvmm is compiled
 * with open, ioctl and munmap renamed to the functions below (the hosted Makefile does it), so its
 * calls reach upstream's frontend in this process: one NVMM owner per open, write-only opens get
 * the root owner (libnvmm's root mode), the ioctls are decoded as the Linux target decodes them
 * (Linux encoding, parameter block copied in and out as the command's direction says).
 */

#include <fcntl.h>
#include <sys/ioctl.h>

#include "nvmm_hosted_api.h"

#define NVMM_HOSTED_MAXFDS	1024

static pthread_mutex_t nvmm_hosted_fd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nvmm_owner *nvmm_hosted_fds[NVMM_HOSTED_MAXFDS];
static pthread_once_t nvmm_hosted_once = PTHREAD_ONCE_INIT;
static int nvmm_hosted_init_error;

static void nvmm_hosted_start(void)
{
	int i;

	for (i = 0; i < NVMM_HOSTED_MAXCPUS; i++)
		nvmm_hosted_cpus[i].number = i;
	nvmm_hosted_init_error = nvmm_hosted_init();
	/* At exit the process's descriptors close, as a kernel closes them: LeakSanitizer then sees
	 * whatever the frontend failed to free. */
	atexit(nvmm_hosted_process_exit);
}

int nvmm_hosted_open(const char *path, int flags, ...)
{
	struct nvmm_owner *owner;
	int fd;

	if (strcmp(path, "/dev/nvmm") != 0) {
		errno = ENOENT;
		return -1;
	}
	pthread_once(&nvmm_hosted_once, nvmm_hosted_start);
	if (nvmm_hosted_init_error != 0) {
		errno = nvmm_hosted_init_error;
		return -1;
	}
	/* A real descriptor reserves the number, so it never collides with the process's own. */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fd >= NVMM_HOSTED_MAXFDS) {
		close(fd);
		errno = EMFILE;
		return -1;
	}
	if ((flags & O_ACCMODE) == O_WRONLY)
		owner = nvmm_hosted_root_owner();
	else
		owner = nvmm_hosted_owner_alloc((int)getpid());
	pthread_mutex_lock(&nvmm_hosted_fd_lock);
	nvmm_hosted_fds[fd] = owner;
	pthread_mutex_unlock(&nvmm_hosted_fd_lock);
	return fd;
}

static struct nvmm_owner *nvmm_hosted_owner_of(int fd)
{
	struct nvmm_owner *owner = NULL;

	pthread_mutex_lock(&nvmm_hosted_fd_lock);
	if (fd >= 0 && fd < NVMM_HOSTED_MAXFDS)
		owner = nvmm_hosted_fds[fd];
	pthread_mutex_unlock(&nvmm_hosted_fd_lock);
	return owner;
}

/* The largest NVMM argument is 112 bytes; any size the encoding allows is served. */
int nvmm_hosted_ioctl(int fd, unsigned long request, ...)
{
	struct nvmm_owner *owner = nvmm_hosted_owner_of(fd);
	unsigned long stack[256 / sizeof(unsigned long)];
	unsigned int size = _IOC_SIZE(request);
	int in = (_IOC_DIR(request) & _IOC_WRITE) != 0;
	int out = (_IOC_DIR(request) & _IOC_READ) != 0;
	void *arg, *data = stack;
	va_list ap;
	int error;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (owner == NULL) {
		errno = EBADF;
		return -1;
	}
	if (_IOC_TYPE(request) != 'N') {
		errno = ENOTTY;
		return -1;
	}
	if (size > sizeof(stack))
		data = nvmm_hosted_mem_alloc(size, 1);
	memset(data, 0, size < sizeof(stack) ? sizeof(stack) : size);
	error = in ? nvmm_hosted_copyin(arg, data, size) : 0;
	if (error == 0)
		error = nvmm_hosted_kernel_ioctl(owner, request, data);
	if (error == 0 && out)
		error = nvmm_hosted_copyout(data, arg, size);
	if (data != stack)
		nvmm_hosted_mem_free(data, size);
	if (error != 0) {
		errno = error;
		return -1;
	}
	return 0;
}

int nvmm_hosted_close(int fd)
{
	struct nvmm_owner *owner;

	pthread_mutex_lock(&nvmm_hosted_fd_lock);
	owner = fd >= 0 && fd < NVMM_HOSTED_MAXFDS ? nvmm_hosted_fds[fd] : NULL;
	if (owner != NULL)
		nvmm_hosted_fds[fd] = NULL;
	pthread_mutex_unlock(&nvmm_hosted_fd_lock);
	if (owner == NULL) {
		errno = EBADF;
		return -1;
	}
	nvmm_hosted_owner_free(owner);
	return close(fd);
}

/* The process unmaps memory: its mappings of NVMM's objects go, with their references. */
int nvmm_hosted_munmap(void *addr, size_t len)
{
	unsigned long start = (unsigned long)addr;

	if (start % NVMM_HOSTED_PAGE != 0 || len == 0) {
		errno = EINVAL;
		return -1;
	}
	os_vmobj_unmap(&nvmm_hosted_curproc_map, start,
		       start + ((len + NVMM_HOSTED_PAGE - 1) & ~(NVMM_HOSTED_PAGE - 1)), 0);
	return 0;
}

/* The process exits: its descriptors close (owners and their machines go), its mappings go. */
void nvmm_hosted_process_exit(void)
{
	struct nvmm_hosted_mapping *m;
	int fd;

	for (fd = 0; fd < NVMM_HOSTED_MAXFDS; fd++)
		if (nvmm_hosted_owner_of(fd) != NULL)
			nvmm_hosted_close(fd);
	pthread_mutex_lock(&nvmm_hosted_maps_lock);
	for (;;) {
		for (m = nvmm_hosted_host_mappings; m != NULL; m = m->next)
			if (m->map == &nvmm_hosted_curproc_map)
				break;
		if (m == NULL)
			break;
		nvmm_hosted_remove(&nvmm_hosted_curproc_map, m->start, m->end);
	}
	pthread_mutex_unlock(&nvmm_hosted_maps_lock);
}

void nvmm_hosted_reset(void)
{
	nvmm_hosted_process_exit();
	nvmm_hosted_kill_root_machines();
}

/* Objects and mappings alive, for leak checks: what a process's exit must leave at zero. */
void nvmm_hosted_counts(unsigned long *mappings, unsigned long *kernel_mappings)
{
	struct nvmm_hosted_mapping *m;

	*mappings = 0;
	*kernel_mappings = 0;
	pthread_mutex_lock(&nvmm_hosted_maps_lock);
	for (m = nvmm_hosted_host_mappings; m != NULL; m = m->next) {
		if (m->map == &nvmm_hosted_curproc_map)
			(*mappings)++;
		else
			(*kernel_mappings)++;
	}
	pthread_mutex_unlock(&nvmm_hosted_maps_lock);
}
