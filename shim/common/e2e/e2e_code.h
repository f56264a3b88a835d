/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the nvmm-port end-to-end programs share with kvm_exits.c, which cannot include libnvmm:
 * the guest code (16-bit real-mode loops, encoded by hand from the Intel SDM Vol. 2) and the
 * clock the benchmarks read.
 */
#ifndef E2E_CODE_H
#define E2E_CODE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define E2E_PAGE		4096UL
#define E2E_MEM_SIZE		(64 * 1024UL)	/* guest RAM at GPA 0 */
#define E2E_CODE_GPA		0x1000UL
#define E2E_DATA_GPA		0x10000UL	/* one page just above guest RAM */
#define E2E_IO_PORT		0x80
#define E2E_MAX_MACHINES		128	/* upper bound of the machines a test fills */

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

/* Seconds on CLOCK_MONOTONIC (under Bochs with clock: sync=none, emulated-instruction time). */
static inline double
e2e_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif /* E2E_CODE_H */
