/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

#ifndef _NVMM_INTERNAL_H_
#define _NVMM_INTERNAL_H_

#ifndef _KERNEL
#error "nvmm_internal.h is for the kernel only"
#endif

#line 138 "toyos/target.toml"
#define NVMM_MAX_RAM	(64ULL * 1024 * 1024 * 1024)
#line 13 "driver/nvmm_internal.h"

#include "nvmm_os.h"

#define NVMM_MAX_MACHINES	8

/* One guest.  The slot lock protects every field below it. */
struct nvmm_machine {
	int present;
	int owner;
	os_mtx_t lock;
	os_vmspace_t *vm;
	uint64_t ram_size;
	void *machdata;
};

/* What a backend (VMX, SVM, ...) hands to the core. */
struct nvmm_impl {
	const char *name;
	size_t machdata_size;
	int (*ident)(void);
	void (*init)(void);
	int (*machine_create)(struct nvmm_machine *);
	void (*machine_destroy)(struct nvmm_machine *m);
	int (*vcpu_run)(struct nvmm_machine *, uint32_t, struct nvmm_x86_exit *);
};

extern const struct nvmm_impl nvmm_vmx_backend;

int nvmm_init(void);
int nvmm_ioctl(unsigned long, void *);

#endif /* _NVMM_INTERNAL_H_ */
