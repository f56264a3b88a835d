// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness for libnvmm's x86 instruction emulator: nvmm_assist_mem() and
 * nvmm_assist_io() run on what a guest controls -- its registers, segments, control registers
 * and MSRs, the bytes of the faulting instruction, its page tables and memory -- and on what the
 * VMM's callbacks answer.  That is the guest-to-host surface every NVMM client (QEMU) exposes.
 *
 * No driver is needed: this file is libnvmm's kernel.  libnvmm's own sources are compiled with
 * their open() and ioctl() renamed to nvmm_fuzz_open() and nvmm_fuzz_ioctl() below, which answer
 * as NVMM's ioctl interface is specified: a capability of this ABI, a machine, a vCPU with its
 * comm page, guest memory mappings; a getstate marks what the comm page holds as cached, as the
 * backends do when they provide the state on a memory or I/O exit (svm_vcpu_state_provide).
 *
 * What the kernel guarantees is kept (an instruction length of at most 15, operand sizes 1, 2, 4
 * or 8, address sizes 2, 4, 8, a segment from -1 to 5); everything else comes from the input.
 *
 * Input: [mode 1][exit 32][state: GPRs, segments, CRs, MSRs][guest memory ...]
 *   mode bit 0: assist I/O instead of memory
 *   mode bits 1-2: 0 fuzzed CPU mode, 1 real mode, 2 32-bit protected flat, 3 64-bit long mode
 *                  with identity page tables at GPA 0x1000 (2 MiB pages)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>		/* _IOR, _IOW, _IOWR of the port's nvmm_ioctl.h */
#include <sys/mman.h>

#include <nvmm.h>
#include <nvmm_ioctl.h>

#define GUEST_MEM	(64 * 1024)
#define FAKE_FD		1023		/* nvmm_fuzz_open's descriptor: never a real one here */
#define PG_P		0x001
#define PG_RW		0x002
#define PG_PS		0x080

int nvmm_fuzz_open(const char *path, int flags, ...);
int nvmm_fuzz_ioctl(int fd, unsigned long cmd, ...);

static struct nvmm_machine mach;
static struct nvmm_vcpu vcpu;
static struct nvmm_comm_page *comm;
static uint8_t *guest;

/* The answers of the VMM's callbacks to reads come from the input's tail, cycled. */
static const uint8_t *answers;
static size_t nanswers, answered;

static void
answer(uint8_t *data, size_t size)
{
	size_t i;

	for (i = 0; i < size; i++)
		data[i] = nanswers ? answers[answered++ % nanswers] : 0;
}

static void
cb_io(struct nvmm_io *io)
{
	if (io->in)
		answer(io->data, io->size);
}

static void
cb_mem(struct nvmm_mem *mem)
{
#ifdef NVMM_FUZZ_PLANTED_BUG
	/* tests/test_fuzz.py: a VMM callback that assumes 2-byte writes to one MMIO register */
	if (mem->write && mem->gpa == 0x5000) {
		uint8_t reg[2];

		memcpy(reg, mem->data, mem->size);
		answered += reg[0];
	}
#endif
	if (!mem->write)
		answer(mem->data, mem->size);
}

int
nvmm_fuzz_open(const char *path, int flags, ...)
{
	(void)flags;
	if (strcmp(path, "/dev/nvmm") != 0) {
		errno = ENOENT;
		return -1;
	}
	return FAKE_FD;
}

int
nvmm_fuzz_ioctl(int fd, unsigned long cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd != FAKE_FD) {
		errno = EBADF;
		return -1;
	}
	switch (cmd) {
	case NVMM_IOC_CAPABILITY: {
		struct nvmm_ioc_capability *a = arg;

		memset(a, 0, sizeof(*a));
		a->cap.version = NVMM_KERN_VERSION;
		a->cap.state_size = sizeof(struct nvmm_x64_state);
		a->cap.max_machines = 1;
		a->cap.max_vcpus = 1;
		a->cap.max_ram = GUEST_MEM;
		return 0;
	}
	case NVMM_IOC_MACHINE_CREATE:
		((struct nvmm_ioc_machine_create *)arg)->machid = 0;
		return 0;
	case NVMM_IOC_VCPU_CREATE: {
		struct nvmm_ioc_vcpu_create *a = arg;

		comm = mmap(NULL, sizeof(*comm), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (comm == MAP_FAILED)
			return -1;
		a->comm = comm;
		return 0;
	}
	case NVMM_IOC_VCPU_GETSTATE:
		comm->state_cached |= comm->state_wanted;	/* the state is what the input put there */
		comm->state_wanted = 0;
		return 0;
	case NVMM_IOC_VCPU_SETSTATE:
	case NVMM_IOC_HVA_MAP:
	case NVMM_IOC_GPA_MAP:
	case NVMM_IOC_VCPU_INJECT:
		return 0;
	default:
		errno = ENOTTY;
		return -1;
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nvmm_assist_callbacks cbs = { .io = cb_io, .mem = cb_mem };

	(void)argc;
	(void)argv;
	guest = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guest == MAP_FAILED || nvmm_init() == -1 || nvmm_machine_create(&mach) == -1 ||
	    nvmm_vcpu_create(&mach, 0, &vcpu) == -1 ||
	    nvmm_vcpu_configure(&mach, &vcpu, NVMM_VCPU_CONF_CALLBACKS, &cbs) == -1 ||
	    nvmm_hva_map(&mach, (uintptr_t)guest, GUEST_MEM) == -1 ||
	    nvmm_gpa_map(&mach, (uintptr_t)guest, 0, GUEST_MEM, PROT_READ | PROT_WRITE | PROT_EXEC) == -1)
		abort();
	return 0;
}

/* Takes up to n bytes from the input into dst (the rest of dst zero). */
static void
take(const uint8_t **p, size_t *left, void *dst, size_t n)
{
	size_t k = n < *left ? n : *left;

	memset(dst, 0, n);
	memcpy(dst, *p, k);
	*p += k;
	*left -= k;
}

static void
flat_segments(struct nvmm_x64_state *st, bool longmode)
{
	int i;

	for (i = 0; i < NVMM_X64_NSEG; i++) {
		st->segs[i].base = 0;
		st->segs[i].limit = 0xffffffff;
		st->segs[i].attrib.p = 1;
		st->segs[i].attrib.s = 1;
		st->segs[i].attrib.g = 1;
		st->segs[i].attrib.def = !longmode;
	}
	st->segs[NVMM_X64_SEG_CS].attrib.type = 0xb;	/* code, readable, accessed */
	st->segs[NVMM_X64_SEG_CS].attrib.l = longmode;
	if (longmode)
		st->segs[NVMM_X64_SEG_CS].attrib.def = 0;
}

static void
set_mode(struct nvmm_x64_state *st, unsigned int mode)
{
	uint64_t *pml4 = (uint64_t *)(guest + 0x1000), *pdpt = (uint64_t *)(guest + 0x2000);
	uint64_t *pd = (uint64_t *)(guest + 0x3000);

	switch (mode) {
	case 1:		/* real mode: paging and protection off */
		st->crs[NVMM_X64_CR_CR0] &= ~(uint64_t)0x80000001;
		st->msrs[NVMM_X64_MSR_EFER] &= ~(uint64_t)0x500;
		break;
	case 2:		/* 32-bit protected mode, flat, no paging */
		st->crs[NVMM_X64_CR_CR0] = (st->crs[NVMM_X64_CR_CR0] | 0x1) & ~(uint64_t)0x80000000;
		st->msrs[NVMM_X64_MSR_EFER] &= ~(uint64_t)0x500;
		flat_segments(st, false);
		break;
	case 3:		/* 64-bit mode with identity page tables for the first 2 MiB */
		memset(guest + 0x1000, 0, 0x3000);
		pml4[0] = 0x2000 | PG_P | PG_RW;
		pdpt[0] = 0x3000 | PG_P | PG_RW;
		pd[0] = 0 | PG_P | PG_RW | PG_PS;
		st->crs[NVMM_X64_CR_CR3] = 0x1000;
		st->crs[NVMM_X64_CR_CR0] |= 0x80000001;
		st->crs[NVMM_X64_CR_CR4] |= 0x20;			/* PAE */
		st->msrs[NVMM_X64_MSR_EFER] |= 0x500;			/* LME, LMA */
		flat_segments(st, true);
		break;
	default:	/* as the input says */
		break;
	}
}

static void
exit_from(struct nvmm_vcpu_exit *exit, const uint8_t *e, bool io)
{
	static const uint8_t opsizes[] = { 1, 2, 4, 8 }, addrsizes[] = { 2, 4, 8, 8 };

	memset(exit, 0, sizeof(*exit));
	if (io) {
		exit->reason = NVMM_VCPU_EXIT_IO;
		exit->u.io.in = e[0] & 1;
		exit->u.io.rep = (e[0] >> 1) & 1;
		exit->u.io.str = (e[0] >> 2) & 1;
		exit->u.io.operand_size = opsizes[(e[0] >> 3) % 3];	/* I/O: 1, 2 or 4 */
		exit->u.io.address_size = addrsizes[(e[0] >> 5) & 3];
		exit->u.io.seg = (int)(e[1] % 7) - 1;
		memcpy(&exit->u.io.port, e + 2, sizeof(exit->u.io.port));
		memcpy(&exit->u.io.npc, e + 4, sizeof(exit->u.io.npc));
	} else {
		exit->reason = NVMM_VCPU_EXIT_MEMORY;
		exit->u.mem.prot = (int[]){ PROT_READ, PROT_WRITE, PROT_EXEC }[e[0] % 3];
		memcpy(&exit->u.mem.gpa, e + 1, sizeof(exit->u.mem.gpa));
		exit->u.mem.inst_len = e[9] % 16;		/* 0: libnvmm fetches it itself */
		memcpy(exit->u.mem.inst_bytes, e + 10, sizeof(exit->u.mem.inst_bytes));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvmm_x64_state *st = vcpu.state;
	uint8_t mode = 0, e[32];
	const uint8_t *p = data;
	size_t left = size;

	take(&p, &left, &mode, 1);
	take(&p, &left, e, sizeof(e));
	take(&p, &left, st->gprs, sizeof(st->gprs));
	take(&p, &left, st->segs, sizeof(st->segs));
	take(&p, &left, st->crs, sizeof(st->crs));
	take(&p, &left, st->msrs, sizeof(st->msrs));
	memset(guest, 0, GUEST_MEM);
	memcpy(guest, p, left < GUEST_MEM ? left : GUEST_MEM);
	answers = p;
	nanswers = left;
	answered = 0;
	set_mode(st, (mode >> 1) & 3);
	exit_from(vcpu.exit, e, mode & 1);
	comm->state_cached = NVMM_X64_STATE_ALL;	/* provided on the exit, as the backends do */
	comm->state_wanted = 0;
	comm->state_commit = 0;

	if (mode & 1)
		(void)nvmm_assist_io(&mach, &vcpu);
	else
		(void)nvmm_assist_mem(&mach, &vcpu);
	return 0;
}
