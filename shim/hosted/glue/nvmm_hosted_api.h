/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The hosted target as a program sees it: the in-process device libnvmm talks to, the process's
 * life, and the fake backend's script.  Plain C; a test or a fuzz harness includes it next to
 * <nvmm.h>.
 */

#ifndef _NVMM_HOSTED_API_H_
#define _NVMM_HOSTED_API_H_

#include <stddef.h>

/* /dev/nvmm in this process: libnvmm's open, ioctl and munmap are these (the Makefile renames). */
int nvmm_hosted_open(const char *path, int flags, ...);
int nvmm_hosted_ioctl(int fd, unsigned long request, ...);
int nvmm_hosted_close(int fd);
int nvmm_hosted_munmap(void *addr, size_t len);

/* The process exits: every descriptor of the device closes and its mappings go. */
void nvmm_hosted_process_exit(void);

/* The system starts afresh: the process exits and the root owner's machines are destroyed too. */
void nvmm_hosted_reset(void);

/* A signal arrives for the calling thread: its running vCPU returns to userland (EXIT_NONE). */
void nvmm_hosted_raise_signal(void);
void nvmm_hosted_clear_signals(void);

/* What is alive: the process's and the kernel's mappings of NVMM objects, and the objects. */
void nvmm_hosted_counts(unsigned long *mappings, unsigned long *kernel_mappings);
unsigned long nvmm_hosted_vmobjs(void);

/*
 * The fake backend.  A vCPU returns the exits scripted for it, in order (each a struct
 * nvmm_x86_exit as <nvmm.h> declares it, its exitstate filled in by the backend); with none left it
 * runs the guest's code on the fake CPU (nvmm_hosted_cpu.c), which returns the exits real hardware
 * would for the instructions it knows, and NVMM_VCPU_EXIT_INVALID (hwcode: the opcode) for others.
 * Returns 0, or ENOENT when that vCPU does not exist, ENOBUFS when the script is full.
 */
#define NVMM_HOSTED_SCRIPT_MAX	64
int nvmm_hosted_script(unsigned int machid, unsigned int cpuid, const void *exits, size_t n);

/* Instructions the fake CPU executed, and exits it returned, since the vCPU was created. */
int nvmm_hosted_vcpu_stats(unsigned int machid, unsigned int cpuid, unsigned long *insns,
			   unsigned long *exits);

#endif /* !_NVMM_HOSTED_API_H_ */
