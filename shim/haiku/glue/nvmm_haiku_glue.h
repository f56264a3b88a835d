/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the Haiku glue's C++ files share among themselves (Haiku's world
 * only; upstream's files never see this header).
 */

#ifndef _NVMM_HAIKU_GLUE_H_
#define _NVMM_HAIKU_GLUE_H_

#include <OS.h>
#include <SupportDefs.h>


// the protection of the areas the glue creates for the kernel's own use
static const uint32 kKernelReadWrite = B_KERNEL_READ_AREA | B_KERNEL_WRITE_AREA;


// cpu.cpp
void		nvmm_haiku_cpus_init(void);
status_t	nvmm_haiku_fpu_init(void);
void		nvmm_haiku_fpu_uninit(void);

// memory.cpp
void		nvmm_haiku_memory_init(void);
void		nvmm_haiku_memory_uninit(void);

// core.cpp: a BSD error number (positive, NetBSD's) as a Haiku status
status_t	nvmm_haiku_status(int bsdError);


#endif	/* _NVMM_HAIKU_GLUE_H_ */
