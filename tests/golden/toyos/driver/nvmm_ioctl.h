/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

#ifndef _NVMM_IOCTL_H_
#define _NVMM_IOCTL_H_

#include <sys/ioccom.h>

#if defined(__NetBSD__)
#include <dev/nvmm/nvmm.h>
#elif defined(__DragonFly__)
#include <dev/virtual/nvmm/nvmm.h>
#elif defined(__toyos__)
#line 141 "toyos/target.toml"
#include "nvmm.h"
#line 16 "driver/nvmm_ioctl.h"
#else
#error "Unsupported OS."
#endif

struct nvmm_ioc_capability {
	struct nvmm_capability cap;
};

struct nvmm_ioc_machine_create {
	uint32_t machid;
	const struct nvmm_machine_conf *conf;
};

struct nvmm_ioc_machine_destroy {
	uint32_t machid;
};

struct nvmm_ioc_vcpu_run {
	uint32_t machid;
	uint32_t cpuid;
	struct nvmm_x86_exit exitinfo;
};

#define NVMM_IOC_CAPABILITY	_IOR('N', 0, struct nvmm_ioc_capability)
#define NVMM_IOC_MACHINE_CREATE	_IOWR('N', 1, struct nvmm_ioc_machine_create)
#define NVMM_IOC_MACHINE_DESTROY	_IOW('N', 2, struct nvmm_ioc_machine_destroy)
#define NVMM_IOC_VCPU_RUN	_IOWR('N', 3, struct nvmm_ioc_vcpu_run)

#endif /* _NVMM_IOCTL_H_ */
