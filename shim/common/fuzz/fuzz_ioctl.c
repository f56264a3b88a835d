// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness for NVMM's ioctl interface: what any local process with /dev/nvmm open can
 * send to the frontend (upstream's driver/nvmm.c), on the hosted target -- the frontend, the fake
 * backend and the glue in this process, built with ASan and UBSan.
 *
 * An input is a program of operations run by two processes' worth of descriptors (two plain
 * owners and the root owner), so machines are created by one owner and attacked by the other:
 *
 *   op 0  ioctl: [owner 1][command 1 (+4)][n 1][argument n][m 1][buffer m][fix-up 1 (+3)]: the
 *         command is one of NVMM's (by index) or, for an index past them, 4 raw bytes; the argument
 *         block is the command's size, its first n bytes from the input, the rest zero; the fix-up
 *         byte points its pointer fields at the buffer or at addresses the process does not have,
 *         narrows ids, and places host addresses (3 more bytes) inside the harness's own memory
 *   op 1  script: [machine 1][vcpu 1][count 1][exits ...]: exits the fake backend returns next
 *   op 2  a signal for this thread (the next run returns EXIT_NONE)
 *   op 3  close one owner's descriptor (its machines die) and open it again
 *   op 4  unmap one of the comm pages the kernel mapped into the process
 *   op 5  write into a comm page: [page 1][offset 2][n 1][bytes n] (the process owns that memory)
 *
 * Host addresses the process registers (hva) are kept inside the harness's pool: a process may
 * register any memory of its own, and mapping over the fuzzer's heap would test nothing of NVMM.
 * After each input the process "exits" (every descriptor closes, root's machines are destroyed,
 * its mappings go) and nothing of NVMM's may remain: a leaked object, mapping or memory block is a
 * finding, as is any sanitizer report or failed NVMM assertion.
 */

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <nvmm.h>
#include <nvmm_ioctl.h>
#include "nvmm_hosted_api.h"

#define PAGE		4096UL
#define POOL_PAGES	64
#define MAX_OPS		48
#define MAX_COMMS	16

static const unsigned long commands[] = {
	NVMM_IOC_CAPABILITY, NVMM_IOC_MACHINE_CREATE, NVMM_IOC_MACHINE_DESTROY,
	NVMM_IOC_MACHINE_CONFIGURE, NVMM_IOC_VCPU_CREATE, NVMM_IOC_VCPU_DESTROY,
	NVMM_IOC_VCPU_CONFIGURE, NVMM_IOC_VCPU_SETSTATE, NVMM_IOC_VCPU_GETSTATE,
	NVMM_IOC_VCPU_INJECT, NVMM_IOC_VCPU_RUN, NVMM_IOC_GPA_MAP, NVMM_IOC_GPA_UNMAP,
	NVMM_IOC_HVA_MAP, NVMM_IOC_HVA_UNMAP, NVMM_IOC_CTL,
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

static const uint64_t reasons[] = {
	NVMM_VCPU_EXIT_NONE, NVMM_VCPU_EXIT_INVALID, NVMM_VCPU_EXIT_MEMORY, NVMM_VCPU_EXIT_IO,
	NVMM_VCPU_EXIT_SHUTDOWN, NVMM_VCPU_EXIT_INT_READY, NVMM_VCPU_EXIT_NMI_READY,
	NVMM_VCPU_EXIT_HALTED, NVMM_VCPU_EXIT_TPR_CHANGED, NVMM_VCPU_EXIT_RDMSR,
	NVMM_VCPU_EXIT_WRMSR, NVMM_VCPU_EXIT_MONITOR, NVMM_VCPU_EXIT_MWAIT, NVMM_VCPU_EXIT_CPUID,
};

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t *pool;			/* the harness's memory, registered with hva_map */
static int fds[3];			/* two plain owners and root */
static void *comms[MAX_COMMS];
static size_t ncomms;

static uint8_t
byte(struct input *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static uint64_t
bytes(struct input *in, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)byte(in) << (8 * i);
	return v;
}

static void
fill(struct input *in, void *dst, size_t n)
{
	size_t k = n < in->left ? n : in->left;

	memset(dst, 0, n);
	memcpy(dst, in->p, k);
	in->p += k;
	in->left -= k;
}

static int
open_owner(int i)
{
	return nvmm_hosted_open("/dev/nvmm", (i == 2 ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
}

/* An address in the pool, page-aligned unless the input says otherwise; a size that stays in it. */
static void
pool_range(struct input *in, uintptr_t *hva, size_t *size)
{
	uint8_t at = byte(in), len = byte(in), odd = byte(in);
	size_t first = at % POOL_PAGES, n = len % (POOL_PAGES - first + 1);

	*hva = (uintptr_t)pool + first * PAGE + ((odd & 0x80) ? (odd & 0x7F) : 0);
	*size = n * PAGE + ((odd & 0x40) ? (odd & 0x3F) : 0);
	if (*hva + *size > (uintptr_t)pool + POOL_PAGES * PAGE)
		*size = 0;
}

/* Whether the argument starts with a machine id and a vCPU id (the vCPU commands). */
static int
size_of_ids(unsigned long cmd)
{
	return _IOC_SIZE(cmd) >= 2 * sizeof(uint32_t);
}

/*
 * A user pointer of the argument: the harness's buffer, or an address the process does not have
 * (in the first 64 KiB, or not canonical), which the kernel must refuse with EFAULT.  Never any
 * other address: libFuzzer feeds back values the code compared, heap addresses included, and a
 * pointer into the fuzzer's own (freed) memory would be a report about the harness, not NVMM.
 */
static void *
user_pointer(void *raw, uint8_t how, uint8_t *buf)
{
	if (how & 1)
		return buf;
	if (how & 0x10)
		return (void *)((uintptr_t)raw & 0xFFFF);
	return (void *)((uintptr_t)raw | 0x8000000000000000ULL);
}

static void
fix_up(struct input *in, unsigned long cmd, void *arg, uint8_t *buf, size_t buflen)
{
	uint8_t how = byte(in);

	if (cmd == NVMM_IOC_MACHINE_CONFIGURE) {
		struct nvmm_ioc_machine_configure *a = arg;

		a->conf = user_pointer(a->conf, how, buf);
	} else if (cmd == NVMM_IOC_VCPU_CONFIGURE) {
		struct nvmm_ioc_vcpu_configure *a = arg;

		a->conf = user_pointer(a->conf, how, buf);
	} else if (cmd == NVMM_IOC_CTL) {
		struct nvmm_ioc_ctl *a = arg;

		a->data = user_pointer(a->data, how, buf);
		if (how & 2)
			a->size = buflen;
	} else if (cmd == NVMM_IOC_HVA_MAP) {
		struct nvmm_ioc_hva_map *a = arg;

		pool_range(in, &a->hva, &a->size);
	} else if (cmd == NVMM_IOC_HVA_UNMAP) {
		struct nvmm_ioc_hva_unmap *a = arg;

		pool_range(in, &a->hva, &a->size);
	} else if (cmd == NVMM_IOC_GPA_MAP && (how & 1)) {
		struct nvmm_ioc_gpa_map *a = arg;
		size_t size;

		pool_range(in, &a->hva, &size);
		if (how & 2)
			a->size = size;
	}
	/* small ids reach machines and vCPUs that exist */
	if ((how & 4) && cmd != NVMM_IOC_CAPABILITY && cmd != NVMM_IOC_CTL)
		*(uint32_t *)arg %= 4;
	if ((how & 8) && _IOC_TYPE(cmd) == 'N' && _IOC_NR(cmd) >= 4 && _IOC_NR(cmd) <= 10 &&
	    size_of_ids(cmd))
		((uint32_t *)arg)[1] %= 4;
}

static void
op_ioctl(struct input *in)
{
	uint8_t owner = byte(in) % 3, which = byte(in), n;
	unsigned long cmd;
	uint64_t arg[256 / sizeof(uint64_t)];
	static uint8_t buf[4096];
	size_t size;

	if (which < 2 * NCOMMANDS)
		cmd = commands[which % NCOMMANDS];
	else
		cmd = (unsigned long)bytes(in, 4);
	size = _IOC_SIZE(cmd);
	if (size > sizeof(arg))
		return;		/* larger than any NVMM argument: the device would reject it */
	memset(arg, 0, sizeof(arg));
	n = byte(in);
	fill(in, arg, n < size ? n : size);
	fill(in, buf, byte(in));
	fix_up(in, cmd, arg, buf, sizeof(buf));
	if (nvmm_hosted_ioctl(fds[owner], cmd, arg) != 0)
		return;
	if (cmd == NVMM_IOC_VCPU_CREATE && ncomms < MAX_COMMS)
		comms[ncomms++] = ((struct nvmm_ioc_vcpu_create *)arg)->comm;
#ifdef NVMM_FUZZ_PLANTED_BUG
	/* tests/test_hosted.py: a bug behind a vCPU's I/O exit, which the fuzzer must reach */
	if (cmd == NVMM_IOC_VCPU_RUN && ((struct nvmm_ioc_vcpu_run *)arg)->exit.reason == NVMM_VCPU_EXIT_IO) {
		char *planted = malloc(8);

		planted[((struct nvmm_ioc_vcpu_run *)arg)->exit.u.io.operand_size + 8] = 1;
		free(planted);
	}
#endif
}

static void
op_script(struct input *in)
{
	struct nvmm_vcpu_exit exits[4];
	uint8_t machid = byte(in) % 4, cpuid = byte(in) % 4, n = byte(in) % 5, i;

	for (i = 0; i < n; i++) {
		fill(in, &exits[i], sizeof(exits[i]));
		exits[i].reason = reasons[exits[i].reason % (sizeof(reasons) / sizeof(reasons[0]))];
	}
	nvmm_hosted_script(machid, cpuid, exits, n);
}

/* The process writes its own mapping of a comm page (if it is still mapped: mincore says). */
static void
op_comm(struct input *in)
{
	uint8_t page = byte(in), n;
	uint16_t off = (uint16_t)bytes(in, 2) % PAGE;
	unsigned char vec;
	uint8_t *comm;

	n = byte(in);
	if (ncomms == 0)
		return;
	comm = comms[page % ncomms];
	if (mincore(comm, PAGE, &vec) != 0)
		return;
	if (n > PAGE - off)
		n = (uint8_t)(PAGE - off);
	fill(in, comm + off, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	pool = mmap(NULL, POOL_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_ANON | MAP_PRIVATE, -1, 0);
	if (pool == MAP_FAILED)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	unsigned long maps, kmaps;
	int i, ops;

	for (i = 0; i < 3; i++)
		fds[i] = open_owner(i);
	ncomms = 0;
	for (ops = 0; ops < MAX_OPS && in.left > 0; ops++) {
		switch (byte(&in) % 6) {
		case 0:
			op_ioctl(&in);
			break;
		case 1:
			op_script(&in);
			break;
		case 2:
			nvmm_hosted_raise_signal();
			break;
		case 3:
			i = byte(&in) % 3;
			nvmm_hosted_close(fds[i]);
			fds[i] = open_owner(i);
			break;
		case 4:
			if (ncomms > 0) {
				/* forget it too: the address may be reused by anything */
				i = byte(&in) % (int)ncomms;
				nvmm_hosted_munmap(comms[i], PAGE);
				comms[i] = comms[--ncomms];
			}
			break;
		case 5:
			op_comm(&in);
			break;
		}
	}
	nvmm_hosted_clear_signals();

	/* The process exits; then nothing of NVMM's may be left. */
	nvmm_hosted_reset();
	nvmm_hosted_counts(&maps, &kmaps);
	if (maps != 0 || kmaps != 0 || nvmm_hosted_vmobjs() != 0) {
		fprintf(stderr, "nvmm: %lu process and %lu kernel mapping(s), %lu object(s) left after exit\n",
		    maps, kmaps, nvmm_hosted_vmobjs());
		abort();
	}
	/* hva_map replaced pool pages with NVMM's objects and exit unmapped them: restore the pool */
	if (mmap(pool, POOL_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_ANON | MAP_PRIVATE | MAP_FIXED,
	    -1, 0) == MAP_FAILED)
		abort();
	return 0;
}
