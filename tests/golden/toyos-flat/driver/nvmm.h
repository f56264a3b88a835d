/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

/* The ABI shared by the kernel driver and libnvmm. */

#ifndef _NVMM_H_
#define _NVMM_H_

#include <sys/types.h>

#if defined(__x86_64__)
#line 135 "toyos/target.toml"
#include "x86/nvmm_x86.h"
#line 14 "driver/nvmm.h"
#endif

#define NVMM_KERN_VERSION	3

/* A compile-time assertion that needs nothing from the host headers. */
#define NVMM_CTASSERT(cond)	_Static_assert(cond, #cond)

#define NVMM_EXIT_NONE		0
#define NVMM_EXIT_MEMORY	1
#define NVMM_EXIT_IO		2

struct nvmm_capability {
	uint32_t version;
	uint32_t state_size;
	uint32_t max_machines;
	uint32_t max_vcpus;
	uint64_t max_ram;
	uint64_t spare[5];
};

NVMM_CTASSERT(sizeof(struct nvmm_capability) == 64);

struct nvmm_machine_conf {
	uint64_t ram_size;
	uint64_t flags;
};

#endif /* _NVMM_H_ */
