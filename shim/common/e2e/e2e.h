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

#define E2E_PAGE		4096UL
#define E2E_MEM_SIZE		(64 * 1024UL)	/* guest RAM at GPA 0 */
#define E2E_CODE_GPA		0x1000UL
#define E2E_DATA_GPA		0x10000UL	/* one page just above guest RAM */
#define E2E_IO_PORT		0x80
#define E2E_MAX_MACHINES		128	/* upper bound of the machines a test fills */

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

static inline void
e2e_put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/*
 * The exit loop: `io` OUTs to port 0x80 and `cpuids` CPUID instructions, then HLT.
 *	mov esi, io ; xor edi, edi
 * 1:	out 0x80, al ; add edi, esi ; dec esi ; jnz 1b
 *	mov ebp, cpuids
 * 2:	xor eax, eax ; cpuid ; dec ebp ; jnz 2b
 *	hlt
 * At the HLT, EDI = io * (io + 1) / 2 (mod 2^32).  Both counts must be at least 1.
 */
static inline size_t
e2e_code_exit_loop(uint8_t *p, uint32_t io, uint32_t cpuids)
{
	static const uint8_t code[] = {
		0x66, 0xbe, 0, 0, 0, 0,		/*  0: mov esi, imm32 */
		0x66, 0x31, 0xff,		/*  6: xor edi, edi */
		0xe6, E2E_IO_PORT,		/*  9: out imm8, al */
		0x66, 0x01, 0xf7,		/* 11: add edi, esi */
		0x66, 0x4e,			/* 14: dec esi */
		0x75, 0xf7,			/* 16: jnz 9 */
		0x66, 0xbd, 0, 0, 0, 0,		/* 18: mov ebp, imm32 */
		0x66, 0x31, 0xc0,		/* 24: xor eax, eax */
		0x0f, 0xa2,			/* 27: cpuid */
		0x66, 0x4d,			/* 29: dec ebp */
		0x75, 0xf7,			/* 31: jnz 24 */
		0xf4,				/* 33: hlt */
	};

	memcpy(p, code, sizeof(code));
	e2e_put32(p + 2, io);
	e2e_put32(p + 20, cpuids);
	return sizeof(code);
}

/*
 * The memory-read loop: `io` times, read the dword at E2E_DATA_GPA and OUT it to port 0x80.
 *	mov ax, E2E_DATA_GPA >> 4 ; mov ds, ax ; mov esi, io ; xor edi, edi
 * 1:	mov eax, [0] ; out 0x80, eax ; add edi, esi ; dec esi ; jnz 1b
 *	hlt
 */
static inline size_t
e2e_code_read_loop(uint8_t *p, uint32_t io)
{
	static const uint8_t code[] = {
		0xb8, (E2E_DATA_GPA >> 4) & 0xff,
		(E2E_DATA_GPA >> 12) & 0xff,	/*  0: mov ax, imm16 */
		0x8e, 0xd8,			/*  3: mov ds, ax */
		0x66, 0xbe, 0, 0, 0, 0,		/*  5: mov esi, imm32 */
		0x66, 0x31, 0xff,		/* 11: xor edi, edi */
		0x66, 0xa1, 0x00, 0x00,		/* 14: mov eax, [moffs16 0] */
		0x66, 0xe7, E2E_IO_PORT,	/* 18: out imm8, eax */
		0x66, 0x01, 0xf7,		/* 21: add edi, esi */
		0x66, 0x4e,			/* 24: dec esi */
		0x75, 0xf2,			/* 26: jnz 14 */
		0xf4,				/* 28: hlt */
	};

	memcpy(p, code, sizeof(code));
	e2e_put32(p + 7, io);
	return sizeof(code);
}

/*
 * An endless guest whose exits the kernel handles itself (CPUID), so the vCPU never comes back
 * to userland on its own:  1: cpuid ; jmp 1b
 * (A bare `jmp $` would leave only host interrupts to force exits; Bochs 2.7 was seen to hold
 * those off for tens of seconds in that state, which would measure the emulator, not NVMM.)
 */
static inline size_t
e2e_code_spin(uint8_t *p)
{
	static const uint8_t code[] = {
		0x0f, 0xa2,			/* 0: cpuid */
		0xeb, 0xfc,			/* 2: jmp 0 */
	};

	memcpy(p, code, sizeof(code));
	return sizeof(code);
}

static inline uint32_t
e2e_sum(uint32_t n)
{
	return (uint32_t)((uint64_t)n * (n + 1) / 2);
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

/* Let the kernel give back what it caches, so free memory compares between two points. */
static inline void
e2e_settle(void)
{
	FILE *f;

	sync();
	f = fopen("/proc/sys/vm/drop_caches", "w");
	if (f != NULL) {
		fputs("3\n", f);
		fclose(f);
	}
}

#endif /* E2E_H */
