/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

/* Runs a guest page full of "in %dx,%al" and expects an I/O exit. */

#include <sys/param.h>
#include <sys/types.h>
#include <sys/mman.h>

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvmm.h>

int
main(void)
{
	struct nvmm_machine mach;
	struct nvmm_x86_exit exitinfo;
	unsigned char *hva;

	if (nvmm_init() == -1)
		err(EXIT_FAILURE, "nvmm_init");
	if (nvmm_machine_create(&mach, PAGE_SIZE) == -1)
		err(EXIT_FAILURE, "nvmm_machine_create");

	hva = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
	    MAP_ANON | MAP_PRIVATE, -1, 0);
	if (hva == MAP_FAILED)
		err(EXIT_FAILURE, "mmap");
	memset(hva, 0xEC, PAGE_SIZE);

	if (nvmm_vcpu_run(&mach, 0, &exitinfo) == -1)
		err(EXIT_FAILURE, "nvmm_vcpu_run");
	if (exitinfo.reason != NVMM_EXIT_IO)
		errx(EXIT_FAILURE, "unexpected exit %u", (unsigned int)exitinfo.reason);
	printf("h_io_assist: ok\n");
	nvmm_machine_release(&mach);
	return 0;
}
