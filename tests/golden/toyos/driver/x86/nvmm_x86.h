/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

#ifndef _NVMM_X86_H_
#define _NVMM_X86_H_

#if defined(__NetBSD__)
#include <x86/specialreg.h>
#elif defined(__DragonFly__) || defined(__toyos__)
#include <machine/specialreg.h>
#endif

#ifdef __DragonFly__
/* Register names that DragonFly spells differently. */
#define MSR_CR_PAT		MSR_PAT
#define MSR_GSBASE		MSR_GS_BASE
#define CR4_VMXE		CR4_VMXENABLE
#endif

/* CPUID leaf 1, %ecx: the CPU has VMX. */
#define NVMM_CPUID1_VMX		__BIT(5)

/* IA32_VMX_BASIC and the VMCS revision identifier in its low bits. */
#define NVMM_MSR_VMX_BASIC	0x00000480
#define NVMM_VMX_BASIC_REVID	__BITS(30, 0)

#ifndef ASM_NVMM

struct nvmm_x86_exit {
	uint64_t reason;
	uint64_t qual;
};

#ifdef _KERNEL
/* Small x86 helper layer, the second OS-dependent layer. */
#if defined(__NetBSD__) || defined(__toyos__)
static inline uint64_t
x86_get_cr0(void)
{
	return rcr0();
}

static inline uint64_t
x86_get_cr4(void)
{
	return rcr4();
}

#define x86_get_cpuid(eax, regs)	x86_cpuid(eax, regs)
#define x86_set_cr4(v)			lcr4(v)
#elif defined(__DragonFly__)
static inline uint64_t
x86_get_cr0(void)
{
	return rcr0();
}

static inline uint64_t
x86_get_cr4(void)
{
	return rcr4();
}

#define x86_get_cpuid(eax, regs)	do_cpuid(eax, regs)
#define x86_set_cr4(v)			load_cr4(v)
#endif
#endif /* _KERNEL */

#endif /* !ASM_NVMM */

#endif /* _NVMM_X86_H_ */
