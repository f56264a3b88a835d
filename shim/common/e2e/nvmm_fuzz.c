// SPDX-License-Identifier: BSD-2-Clause
/*
 * Bounded random-ioctl run on /dev/nvmm: random command numbers (NVMM's own, 'N' with random
 * number, direction and size, and fully random), random argument pointers (valid scratch
 * memory straddling a guard page, NULL, unmapped, kernel addresses, unaligned) and random
 * contents, steered part of the time toward live machine and vCPU ids so that calls get past
 * the id checks.  Guest memory addresses only ever point into a reserved hole (or are junk), so
 * the fuzzer cannot map over its own code, stack or scratch memory.  A periodic timer signal bounds
 * every VCPU_RUN.  The kernel must survive: the caller checks dmesg afterwards.
 *
 * Usage: nvmm_fuzz [seed [calls]]
 */
#include "e2e.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#define SCRATCH_PAGES	8
#define HOLE_SIZE	(64UL << 20)
#define MAX_IDS		16

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	/* xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators") */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t
below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static uint8_t *scratch, *hole;
static uint32_t machids[MAX_IDS];
static unsigned int nmachids;

static void
on_alarm(int sig)
{
	(void)sig;
}

static const unsigned long nvmm_cmds[] = {
	NVMM_IOC_CAPABILITY, NVMM_IOC_MACHINE_CREATE, NVMM_IOC_MACHINE_DESTROY,
	NVMM_IOC_MACHINE_CONFIGURE, NVMM_IOC_VCPU_CREATE, NVMM_IOC_VCPU_DESTROY,
	NVMM_IOC_VCPU_CONFIGURE, NVMM_IOC_VCPU_SETSTATE, NVMM_IOC_VCPU_GETSTATE,
	NVMM_IOC_VCPU_INJECT, NVMM_IOC_VCPU_RUN, NVMM_IOC_GPA_MAP, NVMM_IOC_GPA_UNMAP,
	NVMM_IOC_HVA_MAP, NVMM_IOC_HVA_UNMAP, NVMM_IOC_CTL,
};
#define NCMDS	(sizeof(nvmm_cmds) / sizeof(nvmm_cmds[0]))

/*
 * An address for a guest-memory field: inside the hole, or junk no mapping can hit.  Never the
 * scratch area: HVA_MAP replaces what is there and HVA_UNMAP removes it.
 */
static uint64_t
pick_hva(void)
{
	switch (below(6)) {
	case 0:
	case 2:
		return (uintptr_t)hole + below(HOLE_SIZE / E2E_PAGE) * E2E_PAGE;
	case 1:
		return (uintptr_t)hole + below(HOLE_SIZE);
	case 3:
		return 0;
	case 4:
		return 0xffff800000000000ULL + below(1ULL << 40) * E2E_PAGE;
	default:
		return rnd() | (1ULL << 63);	/* never a user address */
	}
}

static uint64_t
pick_size(void)
{
	switch (below(5)) {
	case 0:
		return E2E_PAGE * (1 + below(16));
	case 1:
		return below(1ULL << 20);
	case 2:
		return 0;
	case 3:
		return rnd();
	default:
		return E2E_PAGE * below(HOLE_SIZE / E2E_PAGE + 2);
	}
}

/* Fill an argument: random bytes, then, half the time, plausible fields at their offsets. */
static void
fill_arg(uint8_t *p, size_t len, unsigned long cmd)
{
	size_t i;
	uint64_t r;

	for (i = 0; i + 8 <= len; i += 8) {		/* eight random bytes per draw */
		r = rnd();
		memcpy(p + i, &r, 8);
	}
	r = rnd();
	memcpy(p + i, &r, len - i);
	if (below(2) || len < 8)
		return;
	if (nmachids && below(4))
		e2e_put32(p, machids[below(nmachids)]);
	else
		e2e_put32(p, (uint32_t)below(4));
	e2e_put32(p + 4, (uint32_t)below(3));			/* vCPU id or low op bits */
	if (cmd == NVMM_IOC_HVA_MAP || cmd == NVMM_IOC_HVA_UNMAP || cmd == NVMM_IOC_GPA_MAP) {
		uint64_t hva = pick_hva(), size = pick_size(), gpa = below(1ULL << 32) & ~0xfffULL;

		if (len >= 16)
			memcpy(p + 8, &hva, 8);
		if (cmd == NVMM_IOC_GPA_MAP && len >= 32) {
			memcpy(p + 16, &gpa, 8);
			memcpy(p + 24, &size, 8);
		} else if (len >= 24) {
			memcpy(p + 16, &size, 8);
		}
	} else if (cmd == NVMM_IOC_GPA_UNMAP && len >= 24) {
		uint64_t gpa = below(1ULL << 32) & ~0xfffULL, size = pick_size();

		memcpy(p + 8, &gpa, 8);
		memcpy(p + 16, &size, 8);
	}
}

/* The argument pointer: mostly scratch (sometimes straddling the guard page), else junk. */
static void *
pick_arg(size_t len, unsigned long cmd)
{
	uint8_t *end = scratch + SCRATCH_PAGES * E2E_PAGE;	/* a PROT_NONE guard page follows */
	uint8_t *p;

	switch (below(10)) {
	case 0:
		return NULL;
	case 1:
		return (void *)(uintptr_t)(0xffffffff81000000ULL + below(1 << 20));
	case 2:
		return hole + below(HOLE_SIZE);
	case 3:
		p = end - below(len + 1);		/* straddles the guard page */
		fill_arg(p, (size_t)(end - p), cmd);
		return p;
	default:
		if (len > SCRATCH_PAGES * E2E_PAGE)
			len = SCRATCH_PAGES * E2E_PAGE;
		p = scratch + below(SCRATCH_PAGES * E2E_PAGE - len + 1);
		if (below(4) == 0)
			p = (uint8_t *)((uintptr_t)p | 1);	/* unaligned */
		if (p + len > end)
			p = end - len;
		fill_arg(p, len, cmd);
		return p;
	}
}

int
main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
	unsigned long calls = argc > 2 ? strtoul(argv[2], NULL, 0) : 10000, n;
	unsigned long ok = 0, errs[160] = { 0 }, per_cmd_ok[NCMDS] = { 0 };
	struct sigaction sa;
	struct itimerval it = { { 0, 2000 }, { 0, 2000 } };
	uint8_t *area;
	int fd, e;

	setvbuf(stdout, NULL, _IOLBF, 0);
	rng_state = seed ? seed : 1;
	printf("seed=%llu calls=%lu\n", (unsigned long long)seed, calls);

	area = mmap(NULL, (SCRATCH_PAGES + 1) * E2E_PAGE, PROT_READ | PROT_WRITE,
	    MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	hole = mmap(NULL, HOLE_SIZE, PROT_NONE, MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED || hole == MAP_FAILED)
		e2e_fail("mmap");
	scratch = area;
	if (mprotect(area + SCRATCH_PAGES * E2E_PAGE, E2E_PAGE, PROT_NONE) == -1)
		e2e_fail("guard page");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;		/* no SA_RESTART: a long VCPU_RUN returns */
	sigaction(SIGALRM, &sa, NULL);
	if (setitimer(ITIMER_REAL, &it, NULL) == -1)
		e2e_fail("setitimer");

	fd = open("/dev/nvmm", O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		e2e_fail("open /dev/nvmm");

	for (n = 0; n < calls; n++) {
		unsigned long cmd;
		size_t len;
		void *arg;
		int r;

		switch (below(10)) {
		case 0:		/* fully random */
			cmd = (unsigned long)(uint32_t)rnd();
			break;
		case 1:		/* 'N', random number, direction and size */
			cmd = _IOC(below(4), 'N', below(32), below(1 << 14));
			break;
		case 2:		/* an NVMM number with a wrong size */
			cmd = _IOC(_IOC_DIR(nvmm_cmds[below(NCMDS)]), 'N',
			    _IOC_NR(nvmm_cmds[below(NCMDS)]), below(512));
			break;
		default:
			cmd = nvmm_cmds[below(NCMDS)];
			break;
		}
		len = _IOC_SIZE(cmd);
		arg = pick_arg(len ? len : 64, cmd);
		errno = 0;
		r = ioctl(fd, cmd, arg);
		e = errno;
		if (r == 0) {
			unsigned int i;

			ok++;
			for (i = 0; i < NCMDS; i++)
				if (nvmm_cmds[i] == cmd)
					per_cmd_ok[i]++;
			if (cmd == NVMM_IOC_MACHINE_CREATE && arg != NULL) {
				uint32_t id;

				memcpy(&id, arg, sizeof(id));
				machids[nmachids < MAX_IDS ? nmachids++ : below(MAX_IDS)] = id;
			}
		} else {
			errs[e >= 0 && e < 159 ? e : 159]++;
		}
		if ((n + 1) % 2500 == 0)
			printf("calls_done=%lu ok=%lu\n", n + 1, ok);
	}
	it.it_value.tv_usec = it.it_interval.tv_usec = 0;
	setitimer(ITIMER_REAL, &it, NULL);

	printf("fuzz_calls=%lu succeeded=%lu machines_created=%lu\n", calls, ok, per_cmd_ok[1]);
	for (e = 0; e < 160; e++)
		if (errs[e])
			printf("errno %d (%s): %lu\n", e, strerror(e), errs[e]);
	for (n = 0; n < NCMDS; n++)
		printf("ok cmd %lu: %lu\n", n, per_cmd_ok[n]);
	if (close(fd) == -1)
		e2e_fail("close");
	if (ok == 0 || per_cmd_ok[1] == 0)
		e2e_fail("no call succeeded: the fuzz never got past argument checks");
	return 0;
}
