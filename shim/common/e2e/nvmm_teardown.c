// SPDX-License-Identifier: BSD-2-Clause
/*
 * Teardown on close: a process that exits, or is killed while a vCPU is inside the guest,
 * without destroying anything, must leave no machine behind.  Proof: afterwards a new process
 * can create the driver's maximum number of machines again, and free memory is back.
 *
 * The abandoning children are fresh processes (this program re-executed with --abandon), so
 * their open of /dev/nvmm is their own: a forked child would share the parent's open file.
 *
 * Usage: nvmm_teardown [max-leak-kib]
 */
#include "e2e.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static struct e2e_vm spinner;

static void *
spin_main(void *arg)
{
	(void)arg;
	for (;;)
		if (nvmm_vcpu_run(&spinner.mach, &spinner.vcpu[0]) == -1 && errno != EINTR)
			e2e_fail("spinning vcpu: run");
}

/*
 * In a child: fill every machine slot, leave one vCPU spinning in the guest, say so on
 * `ready_fd`, then exit or wait to be killed.
 */
static void
abandon(unsigned int nmach, int ready_fd, int killed)
{
	static struct e2e_vm vms[E2E_MAX_MACHINES];
	pthread_t t;
	unsigned int i;

	if (nvmm_init() == -1)
		e2e_fail("child nvmm_init");
	if (e2e_vm_create(&spinner, 1, NULL) == -1)
		e2e_fail("child: spinner machine");
	e2e_code_spin(spinner.mem + E2E_CODE_GPA);
	if (e2e_vcpu_reset(&spinner, 0) == -1)
		e2e_fail("child: spinner reset");
	for (i = 1; i < nmach; i++)
		if (e2e_vm_create(&vms[i], 1, NULL) == -1)
			e2e_fail("child: machine %u of %u", i + 1, nmach);
	if (pthread_create(&t, NULL, spin_main, NULL) != 0)
		e2e_fail("child: pthread_create");
	usleep(50000);
	if (write(ready_fd, "r", 1) != 1)
		e2e_fail("child: ready pipe");
	if (killed)
		for (;;)
			pause();
	_exit(0);	/* no destroy, no close: the kernel closes the fd */
}

static int
fill_again(unsigned int nmach)
{
	static struct e2e_vm vms[E2E_MAX_MACHINES];
	unsigned int i, j;

	for (i = 0; i < nmach; i++)
		if (e2e_vm_create(&vms[i], 1, NULL) == -1) {
			printf("FAIL: only %u of %u machines could be created after teardown (%s)\n",
			    i, nmach, strerror(errno));
			for (j = 0; j < i; j++)
				e2e_vm_destroy(&vms[j]);
			return -1;
		}
	for (i = 0; i < nmach; i++)
		if (e2e_vm_destroy(&vms[i]) == -1)
			e2e_fail("destroy %u", i);
	return 0;
}

int
main(int argc, char **argv)
{
	long limit = argc == 2 ? strtol(argv[1], NULL, 0) : 2048;	/* see nvmm_leak.c */
	struct nvmm_capability cap;
	const char *how[2] = { "exit", "sigkill" };
	long before, after;
	int k, fail = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && strcmp(argv[1], "--abandon") == 0)
		abandon((unsigned)atoi(argv[2]), atoi(argv[3]), strcmp(argv[4], "sigkill") == 0);
	if (nvmm_init() == -1 || nvmm_capability(&cap) == -1)
		e2e_fail("nvmm_init/capability");
	if (cap.max_machines > E2E_MAX_MACHINES)
		cap.max_machines = E2E_MAX_MACHINES;
	printf("max_machines=%u\n", cap.max_machines);
	e2e_settle();
	before = e2e_meminfo("MemFree") + e2e_pcp_kib();

	for (k = 0; k < 2; k++) {
		int p[2], status;
		char c;
		pid_t pid;

		if (pipe(p) == -1)
			e2e_fail("pipe");
		pid = fork();
		if (pid == -1)
			e2e_fail("fork");
		if (pid == 0) {
			char nm[16], fd[16];

			close(p[0]);
			snprintf(nm, sizeof(nm), "%u", cap.max_machines);
			snprintf(fd, sizeof(fd), "%d", p[1]);
			execl("/proc/self/exe", argv[0], "--abandon", nm, fd, how[k], (char *)NULL);
			e2e_fail("exec");
		}
		close(p[1]);
		if (read(p[0], &c, 1) != 1) {
			printf("FAIL: %s child died before it was ready\n", how[k]);
			waitpid(pid, &status, 0);
			return 1;
		}
		close(p[0]);
		if (k == 1)
			kill(pid, SIGKILL);
		if (waitpid(pid, &status, 0) != pid)
			e2e_fail("waitpid");
		printf("child_%s status=%#x\n", how[k], status);
		if (fill_again(cap.max_machines) == -1)
			fail = 1;
		else
			printf("refill_after_%s=%u\n", how[k], cap.max_machines);
	}
	e2e_settle();
	usleep(100000);
	after = e2e_meminfo("MemFree") + e2e_pcp_kib();
	printf("memfree_delta_kib=%ld limit_kib=%ld\n", after - before, limit);
	if (before - after > limit) {
		printf("FAIL: %ld KiB not given back after teardown\n", before - after);
		fail = 1;
	}
	return fail;
}
