/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

#ifndef _LIBNVMM_H_
#define _LIBNVMM_H_

#include <dev/virtual/nvmm/nvmm.h>
#include <dev/virtual/nvmm/nvmm_ioctl.h>	/* the ioctl ABI */

/* The library's handle on a guest. */
struct nvmm_machine {
	uint32_t machid;
	uint64_t ram_size;
};

int nvmm_init(void);
int nvmm_machine_create(struct nvmm_machine *, uint64_t);
int nvmm_machine_release(struct nvmm_machine *);
int nvmm_vcpu_run(struct nvmm_machine *, uint32_t, struct nvmm_x86_exit *);

#endif /* _LIBNVMM_H_ */
