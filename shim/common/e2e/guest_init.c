// SPDX-License-Identifier: BSD-2-Clause
/*
 * /init of the nested guest that QEMU boots with -accel nvmm in the end-to-end run: it prints
 * one line the host judges, then powers the virtual machine off (QEMU exits 0).
 *
 *   NESTED-GUEST-UP cpus=N uptime=S
 *
 * N counts the CPUs init may run on, which at this point are the CPUs the kernel brought online:
 * with -smp 2 it is 2 only if the second vCPU took its SIPI and started.  Built static; the kernel
 * gives it /dev/console as fds 0-2.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

int
main(void)
{
	cpu_set_t set;
	struct timespec up;
	int cpus = 0;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		cpus = CPU_COUNT(&set);
	clock_gettime(CLOCK_BOOTTIME, &up);
	printf("NESTED-GUEST-UP cpus=%d uptime=%ld.%02ld\n", cpus, (long)up.tv_sec, up.tv_nsec / 10000000);
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	/* not reached unless the kernel refused: QEMU's -no-reboot then ends the run on the panic */
	perror("reboot");
	return 1;
}
