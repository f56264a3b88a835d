// SPDX-License-Identifier: BSD-2-Clause
/*
 * Checks of upstream's frontend on the hosted target, through libnvmm and raw ioctls: what the
 * frontend promises to userland, with exits scripted on the fake backend.  Each check prints
 * "Test 'NAME' passed" or "FAIL NAME: why" (and the program exits 1); the runner
 * (nvmm_port/run/hosted.py) reads those lines.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nvmm.h>
#include "nvmm_hosted_api.h"

#define PAGE	4096
#define RFLAGS_IF	0x200	/* Intel SDM Vol. 1, 3.4.3: the interrupt enable flag */

static int failures;

#define CHECK(name, cond, ...)							\
	do {									\
		if (!(cond)) {							\
			printf("FAIL %s: ", name);				\
			printf(__VA_ARGS__);					\
			printf("\n");						\
			failures++;						\
			return;							\
		}								\
	} while (0)

static void
passed(const char *name)
{
	printf("Test '%s' passed\n", name);
}

static int
ioc(int fd, unsigned long cmd, void *arg)
{
	return nvmm_hosted_ioctl(fd, cmd, arg) == 0 ? 0 : errno;
}

/* A machine belongs to the process that created it; root (a write-only open) reaches every one. */
static void
check_owners(void)
{
	const char *name = "owners";
	struct nvmm_ioc_machine_create mc;
	struct nvmm_ioc_machine_destroy md;
	struct nvmm_ioc_vcpu_create vc;
	struct nvmm_ioc_ctl ctl;
	struct nvmm_ctl_mach_info info;
	int a = nvmm_hosted_open("/dev/nvmm", O_RDONLY | O_CLOEXEC);
	int b = nvmm_hosted_open("/dev/nvmm", O_RDONLY | O_CLOEXEC);
	int root = nvmm_hosted_open("/dev/nvmm", O_WRONLY | O_CLOEXEC);
	int e;

	CHECK(name, a >= 0 && b >= 0 && root >= 0, "open: %s", strerror(errno));
	memset(&mc, 0, sizeof(mc));
	CHECK(name, ioc(a, NVMM_IOC_MACHINE_CREATE, &mc) == 0, "machine create");
	memset(&vc, 0, sizeof(vc));
	vc.machid = mc.machid;
	vc.cpuid = 0;
	e = ioc(b, NVMM_IOC_VCPU_CREATE, &vc);
	CHECK(name, e == EPERM, "another owner created a vCPU in A's machine (%s)", strerror(e));
	md.machid = mc.machid;
	e = ioc(b, NVMM_IOC_MACHINE_DESTROY, &md);
	CHECK(name, e == EPERM, "another owner destroyed A's machine (%s)", strerror(e));

	memset(&info, 0, sizeof(info));
	info.machid = mc.machid;
	ctl.op = NVMM_CTL_MACH_INFO;
	ctl.data = &info;
	ctl.size = sizeof(info);
	e = ioc(root, NVMM_IOC_CTL, &ctl);
	CHECK(name, e == 0 && info.pid == getpid(), "root's MACH_INFO: %s, pid %d", strerror(e), (int)info.pid);
	e = ioc(b, NVMM_IOC_CTL, &ctl);
	CHECK(name, e == EPERM, "MACH_INFO of A's machine by another owner (%s)", strerror(e));
	ctl.data = (void *)8;		/* an address the process does not have */
	e = ioc(root, NVMM_IOC_CTL, &ctl);
	CHECK(name, e == EFAULT, "copyin from a bad address gave %s", strerror(e));

	/* Closing A destroys its machine: the id is free again for B. */
	CHECK(name, nvmm_hosted_close(a) == 0, "close");
	memset(&mc, 0, sizeof(mc));
	CHECK(name, ioc(b, NVMM_IOC_MACHINE_CREATE, &mc) == 0 && mc.machid == md.machid,
	      "the machine of a closed owner was not destroyed (B got id %u, A had %u)", mc.machid, md.machid);
	nvmm_hosted_close(b);
	nvmm_hosted_close(root);
	passed(name);
}

static void
check_script_and_faults(struct nvmm_machine *mach, struct nvmm_vcpu *vcpu, uint8_t *ram)
{
	const char *name = "scripted exits";
	struct nvmm_vcpu_exit ex[4];
	struct nvmm_comm_page *comm = mach->pages[vcpu->cpuid];

	memset(ex, 0, sizeof(ex));
	/* A nested fault on RAM the guest has is resolved in the kernel, never seen by userland. */
	ex[0].reason = NVMM_VCPU_EXIT_MEMORY;
	ex[0].u.mem.gpa = 0x10000 + 0x123;
	ex[0].u.mem.prot = PROT_WRITE;
	ex[1].reason = NVMM_VCPU_EXIT_IO;
	ex[1].u.io.port = 0x3F8;
	ex[1].u.io.operand_size = 1;
	ex[1].u.io.npc = 0x1001;
	/* One on an address with no memory goes to userland (MMIO). */
	ex[2].reason = NVMM_VCPU_EXIT_MEMORY;
	ex[2].u.mem.gpa = 0xF0000000;
	ex[2].u.mem.prot = PROT_READ;
	ex[3].reason = NVMM_VCPU_EXIT_HALTED;
	CHECK(name, nvmm_hosted_script(mach->machid, vcpu->cpuid, ex, 4) == 0, "script");

	CHECK(name, nvmm_vcpu_run(mach, vcpu) == 0, "run: %s", strerror(errno));
	CHECK(name, vcpu->exit->reason == NVMM_VCPU_EXIT_IO && vcpu->exit->u.io.port == 0x3F8,
	      "first exit to userland is %#lx, wanted the I/O exit (the RAM fault is the kernel's)",
	      (unsigned long)vcpu->exit->reason);
	CHECK(name, (comm->state_cached & NVMM_X64_STATE_GPRS) != 0,
	      "an I/O exit must provide the GPRs in the comm page (cached %#lx)", (unsigned long)comm->state_cached);
	CHECK(name, nvmm_vcpu_run(mach, vcpu) == 0 && vcpu->exit->reason == NVMM_VCPU_EXIT_MEMORY &&
	      vcpu->exit->u.mem.gpa == 0xF0000000, "MMIO exit: %#lx", (unsigned long)vcpu->exit->reason);
	CHECK(name, nvmm_vcpu_run(mach, vcpu) == 0 && vcpu->exit->reason == NVMM_VCPU_EXIT_HALTED,
	      "halted: %#lx", (unsigned long)vcpu->exit->reason);
	(void)ram;
	passed(name);

	name = "signal";
	nvmm_hosted_raise_signal();
	ex[0].reason = NVMM_VCPU_EXIT_HALTED;
	nvmm_hosted_script(mach->machid, vcpu->cpuid, ex, 1);
	CHECK(name, nvmm_vcpu_run(mach, vcpu) == 0 && vcpu->exit->reason == NVMM_VCPU_EXIT_NONE,
	      "a pending signal must return EXIT_NONE, got %#lx", (unsigned long)vcpu->exit->reason);
	CHECK(name, nvmm_vcpu_run(mach, vcpu) == 0 && vcpu->exit->reason == NVMM_VCPU_EXIT_HALTED,
	      "after the signal the scripted exit: %#lx", (unsigned long)vcpu->exit->reason);
	passed(name);
}

static void
check_state_and_events(struct nvmm_machine *mach, struct nvmm_vcpu *vcpu)
{
	const char *name = "state and events";
	struct nvmm_x64_state *regs = vcpu->state;
	struct nvmm_vcpu_exit ex;

	CHECK(name, nvmm_vcpu_getstate(mach, vcpu, NVMM_X64_STATE_ALL) == 0, "getstate");
	CHECK(name, regs->segs[NVMM_X64_SEG_CS].selector == 0xF000 &&
	      regs->gprs[NVMM_X64_GPR_RIP] == 0xFFF0, "not the RESET state: CS %#x RIP %#lx",
	      regs->segs[NVMM_X64_SEG_CS].selector, (unsigned long)regs->gprs[NVMM_X64_GPR_RIP]);
	regs->gprs[NVMM_X64_GPR_RBX] = 0x1234;
	regs->gprs[NVMM_X64_GPR_RFLAGS] |= RFLAGS_IF;
	regs->intr.int_window_exiting = 1;
	CHECK(name, nvmm_vcpu_setstate(mach, vcpu, NVMM_X64_STATE_GPRS | NVMM_X64_STATE_INTR) == 0, "setstate");
	CHECK(name, nvmm_vcpu_run(mach, vcpu) == 0 && vcpu->exit->reason == NVMM_VCPU_EXIT_INT_READY,
	      "asked for the interrupt window with IF set, got %#lx", (unsigned long)vcpu->exit->reason);
	regs->gprs[NVMM_X64_GPR_RBX] = 0;
	CHECK(name, nvmm_vcpu_getstate(mach, vcpu, NVMM_X64_STATE_GPRS) == 0 &&
	      regs->gprs[NVMM_X64_GPR_RBX] == 0x1234, "RBX after a run: %#lx",
	      (unsigned long)regs->gprs[NVMM_X64_GPR_RBX]);
	regs->intr.int_window_exiting = 0;
	nvmm_vcpu_setstate(mach, vcpu, NVMM_X64_STATE_INTR);

	vcpu->event->type = NVMM_VCPU_EVENT_EXCP;
	vcpu->event->vector = 2;	/* NMI is not an exception */
	CHECK(name, nvmm_vcpu_inject(mach, vcpu) == 0, "inject");
	CHECK(name, nvmm_vcpu_run(mach, vcpu) == -1 && errno == EINVAL, "a bad event must fail the run");
	vcpu->event->type = NVMM_VCPU_EVENT_INTR;
	vcpu->event->vector = 0x20;
	memset(&ex, 0, sizeof(ex));
	ex.reason = NVMM_VCPU_EXIT_HALTED;
	nvmm_hosted_script(mach->machid, vcpu->cpuid, &ex, 1);
	CHECK(name, nvmm_vcpu_inject(mach, vcpu) == 0 && nvmm_vcpu_run(mach, vcpu) == 0 &&
	      !vcpu->exit->exitstate.evt_pending, "an interrupt stays pending after the entry");
	passed(name);
}

int
main(void)
{
	struct nvmm_machine mach;
	struct nvmm_vcpu vcpu;
	unsigned long maps, kmaps;
	uint8_t *ram;

	check_owners();

	if (nvmm_init() == -1 || nvmm_machine_create(&mach) == -1 || nvmm_vcpu_create(&mach, 0, &vcpu) == -1) {
		printf("FAIL setup: %s\n", strerror(errno));
		return 1;
	}
	ram = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_ANON | MAP_PRIVATE, -1, 0);
	if (ram == MAP_FAILED || nvmm_hva_map(&mach, (uintptr_t)ram, 4 * PAGE) == -1 ||
	    nvmm_gpa_map(&mach, (uintptr_t)ram, 0x10000, 4 * PAGE, PROT_READ | PROT_WRITE) == -1) {
		printf("FAIL memory setup: %s\n", strerror(errno));
		return 1;
	}
	check_script_and_faults(&mach, &vcpu, ram);
	check_state_and_events(&mach, &vcpu);

	/* Teardown: nothing of NVMM's may outlive the machine and the process's mappings. */
	nvmm_vcpu_destroy(&mach, &vcpu);
	nvmm_machine_destroy(&mach);
	nvmm_hosted_munmap(ram, 4 * PAGE);
	nvmm_hosted_process_exit();
	nvmm_hosted_counts(&maps, &kmaps);
	if (maps != 0 || kmaps != 0 || nvmm_hosted_vmobjs() != 0) {
		printf("FAIL teardown: %lu process and %lu kernel mapping(s), %lu object(s) left\n", maps, kmaps,
		       nvmm_hosted_vmobjs());
		failures++;
	} else {
		passed("teardown");
	}
	return failures ? 1 : 0;
}
