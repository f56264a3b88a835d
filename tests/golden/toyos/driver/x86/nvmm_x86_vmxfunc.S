/* mini-nvmm: synthetic test fixture for nvmm-port. Public domain. */

#if defined(__NetBSD__) || defined(__toyos__)
#include <machine/asm.h>
#elif defined(__DragonFly__)
#include <machine/asmacros.h>
#endif

#define ASM_NVMM
#include "nvmm_x86.h"

/* Keep the host GS base on the stack across the guest run. */
#define HOST_GSBASE_SAVE		\
	movl	$MSR_GSBASE,%ecx	;\
	rdmsr				;\
	pushq	%rdx			;\
	pushq	%rax

#define HOST_GSBASE_RESTORE		\
	popq	%rax			;\
	popq	%rdx			;\
	movl	$MSR_GSBASE,%ecx	;\
	wrmsr

	.text

/*
 * int vmx_vmlaunch(uint64_t *gprs)
 * Returns -1 on VMfailInvalid and panics on VMfailValid.
 */
ENTRY(vmx_vmlaunch)
	HOST_GSBASE_SAVE
	movq	%rdi,%rax
	movq	0(%rax),%rbx
	movq	8(%rax),%rcx
	vmlaunch
	jz	.Lvmx_fail_valid
	HOST_GSBASE_RESTORE
	movq	$-1,%rax
	retq
.Lvmx_fail_valid:
	leaq	.Lvmx_fail_msg(%rip),%rdi
	call	_C_LABEL(panic)
END(vmx_vmlaunch)

.Lvmx_fail_msg:
	.asciz	"vmx_vmlaunch: VMfailValid"
