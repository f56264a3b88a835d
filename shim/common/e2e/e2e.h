/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Shared helpers of the nvmm-port end-to-end guest programs (shim/common/e2e/).
 *
 * These programs run inside the emulated machine that `gen.py e2e` boots, next to upstream's own
 * libnvmm tests, and use only the public libnvmm API (plus raw ioctls where a test has to bypass
 * libnvmm).  Each prints "FAIL: reason" and exits 1 on failure, or prints its measurements as
 * "key=value" lines and exits 0.
 *
 * The guest they run is a few bytes of 16-bit real-mode code at E2E_CODE_GPA; instruction
 * encodings are from the Intel SDM Vol. 2.
 */
#ifndef E2E_H
#define E2E_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nvmm.h>

#include "e2e_code.h"

static void __attribute__((noreturn, format(printf, 1, 2)))
e2e_fail(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	fputs("FAIL: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (errno %d: %s)\n", saved, strerror(saved));
	fflush(stdout);
	exit(1);
}

struct e2e_vm {
	struct nvmm_machine mach;
	struct nvmm_vcpu vcpu[2];
	unsigned int nvcpu;
	uint8_t *mem;
};

static void
e2e_io_nop(struct nvmm_io *io)
{
	(void)io;
}

/* Put the vCPU in real mode at E2E_CODE_GPA with flat 64 KiB segments and IF clear. */
static inline int
e2e_vcpu_reset(struct e2e_vm *vm, unsigned int i)
{
	struct nvmm_vcpu *vcpu = &vm->vcpu[i];
	struct nvmm_x64_state *st = vcpu->state;
	int s;

	if (nvmm_vcpu_getstate(&vm->mach, vcpu, NVMM_X64_STATE_SEGS | NVMM_X64_STATE_GPRS) == -1)
		return -1;
	for (s = NVMM_X64_SEG_ES; s <= NVMM_X64_SEG_GS; s++) {
		st->segs[s].selector = 0;
		st->segs[s].base = 0;
		st->segs[s].limit = 0xffff;
	}
	st->gprs[NVMM_X64_GPR_RIP] = E2E_CODE_GPA;
	st->gprs[NVMM_X64_GPR_RFLAGS] = 0x2;	/* bit 1 is reserved, always 1 */
	return nvmm_vcpu_setstate(&vm->mach, vcpu, NVMM_X64_STATE_SEGS | NVMM_X64_STATE_GPRS);
}

/*
 * A machine with `nvcpu` vCPUs and E2E_MEM_SIZE of anonymous memory mapped at GPA 0, read,
 * write and execute.  Returns -1 with errno set, leaving nothing half-created.
 */
static inline int
e2e_vm_create(struct e2e_vm *vm, unsigned int nvcpu, void (*io)(struct nvmm_io *))
{
	struct nvmm_assist_callbacks cbs = { .io = io ? io : e2e_io_nop, .mem = NULL };
	unsigned int i;
	int saved;

	memset(vm, 0, sizeof(*vm));
	vm->mem = mmap(NULL, E2E_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (vm->mem == MAP_FAILED)
		return -1;
	if (nvmm_machine_create(&vm->mach) == -1)
		goto fail_mem;
	for (i = 0; i < nvcpu; i++) {
		if (nvmm_vcpu_create(&vm->mach, i, &vm->vcpu[i]) == -1)
			goto fail_mach;
		vm->nvcpu++;
		if (nvmm_vcpu_configure(&vm->mach, &vm->vcpu[i], NVMM_VCPU_CONF_CALLBACKS, &cbs) == -1)
			goto fail_mach;
	}
	if (nvmm_hva_map(&vm->mach, (uintptr_t)vm->mem, E2E_MEM_SIZE) == -1)
		goto fail_mach;
	if (nvmm_gpa_map(&vm->mach, (uintptr_t)vm->mem, 0, E2E_MEM_SIZE,
	    PROT_READ | PROT_WRITE | PROT_EXEC) == -1)
		goto fail_mach;
	return 0;

fail_mach:
	saved = errno;
	nvmm_machine_destroy(&vm->mach);
	errno = saved;
fail_mem:
	saved = errno;
	munmap(vm->mem, E2E_MEM_SIZE);
	errno = saved;
	return -1;
}

/* Tear down in the order a VMM would: unmap guest memory, destroy vCPUs, then the machine. */
static inline int
e2e_vm_destroy(struct e2e_vm *vm)
{
	unsigned int i;

	if (nvmm_gpa_unmap(&vm->mach, (uintptr_t)vm->mem, 0, E2E_MEM_SIZE) == -1)
		return -1;
	if (nvmm_hva_unmap(&vm->mach, (uintptr_t)vm->mem, E2E_MEM_SIZE) == -1)
		return -1;
	for (i = 0; i < vm->nvcpu; i++)
		if (nvmm_vcpu_destroy(&vm->mach, &vm->vcpu[i]) == -1)
			return -1;
	if (nvmm_machine_destroy(&vm->mach) == -1)
		return -1;
	return munmap(vm->mem, E2E_MEM_SIZE);
}

struct e2e_run_stats {
	unsigned long io_exits;
	unsigned long mem_exits;
	unsigned long none_exits;
	unsigned long runs;
};

/*
 * Run vCPU `i` until it halts, assisting I/O exits.  Memory exits (an unmapped GPA) re-run the
 * faulting instruction.  Returns 0 at HLT, -1 on an unexpected exit (reason in *why).
 */
static inline int
e2e_run_to_halt(struct e2e_vm *vm, unsigned int i, struct e2e_run_stats *rs, const char **why)
{
	struct nvmm_vcpu *vcpu = &vm->vcpu[i];

	for (;;) {
		if (nvmm_vcpu_run(&vm->mach, vcpu) == -1) {
			if (errno == EINTR)
				continue;
			*why = "nvmm_vcpu_run failed";
			return -1;
		}
		rs->runs++;
		switch (vcpu->exit->reason) {
		case NVMM_VCPU_EXIT_NONE:
			rs->none_exits++;
			break;
		case NVMM_VCPU_EXIT_IO:
			rs->io_exits++;
			if (nvmm_assist_io(&vm->mach, vcpu) == -1) {
				*why = "nvmm_assist_io failed";
				return -1;
			}
			break;
		case NVMM_VCPU_EXIT_MEMORY:
			rs->mem_exits++;
			break;
		case NVMM_VCPU_EXIT_HALTED:
			return 0;
		default:
			*why = "unexpected exit reason";
			errno = 0;
			fprintf(stdout, "exit reason %#llx\n", (unsigned long long)vcpu->exit->reason);
			return -1;
		}
	}
}

static inline uint64_t
e2e_gpr(struct e2e_vm *vm, unsigned int i, int gpr)
{
	if (nvmm_vcpu_getstate(&vm->mach, &vm->vcpu[i], NVMM_X64_STATE_GPRS) == -1)
		e2e_fail("nvmm_vcpu_getstate");
	return vm->vcpu[i].state->gprs[gpr];
}

/* A field of /proc/meminfo in KiB, or -1. */
static inline long
e2e_meminfo(const char *field)
{
	char line[256];
	size_t n = strlen(field);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * Free pages parked in the per-CPU page lists, in KiB: the "count:" of every CPU's pageset in
 * /proc/zoneinfo (4 KiB pages).  MemFree counts only the buddy allocator's pages; since 6.7 Linux
 * sizes those lists itself (up to several MiB per CPU) and no sysctl drains them, so a page freed
 * there is free but not in MemFree.  -1 when the file cannot be read.
 */
static inline long
e2e_pcp_kib(void)
{
	char line[256];
	long pages = 0, n;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, " count: %ld", &n) == 1)
			pages += n;
	fclose(f);
	return pages * 4;
}

static inline void
e2e_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

/*
 * Let the kernel give back what it caches, so free memory compares between two points: drop
 * the page and slab caches, and compact, which also drains the per-CPU free page lists (pages
 * there do not count as free).
 */
static inline void
e2e_settle(void)
{
	sync();
	e2e_write_file("/proc/sys/vm/drop_caches", "3\n");
	e2e_write_file("/proc/sys/vm/compact_memory", "1\n");
}

#endif /* E2E_H */
