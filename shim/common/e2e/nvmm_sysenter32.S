/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * nvmm_sysenter32: a 32-bit process's system calls on the CPU it runs on, after NVMM has run
 * guests there.  On an Intel CPU a 64-bit Linux gives 32-bit processes a vDSO whose
 * __kernel_vsyscall (found through AT_SYSINFO in the auxiliary vector) enters the kernel with
 * SYSENTER, which takes its code segment, stack and entry point from IA32_SYSENTER_CS/ESP/EIP
 * (Intel SDM Vol. 2B, SYSENTER; #GP(0) when IA32_SYSENTER_CS is 0).  Every VM exit loads those
 * MSRs from the VMCS host-state area (Vol. 3C, 28.5.1): a hypervisor that leaves the fields 0
 * breaks every 32-bit process on that CPU, which then dies of SIGSEGV here.
 *
 * Exit 0: 1000 getpid() calls through __kernel_vsyscall returned the same pid; 1: they did not;
 * 2: no AT_SYSINFO (the kernel offers no vDSO to 32-bit processes).  Built with cc -m32 -nostdlib.
 */

#define AT_NULL		0
#define AT_SYSINFO	32
#define NR_exit		1		/* i386 system call numbers */
#define NR_getpid	20
#define CALLS		1000

	.text
	.globl	_start
_start:
	/* the stack: argc, argv[0..argc-1], NULL, envp[..], NULL, auxv pairs */
	movl	(%esp), %ecx
	leal	8(%esp,%ecx,4), %esi		/* envp */
1:	cmpl	$0, (%esi)
	leal	4(%esi), %esi			/* (leal keeps the flags) */
	jne	1b
2:	movl	(%esi), %eax			/* auxv: type, value */
	cmpl	$AT_NULL, %eax
	je	no_vdso
	cmpl	$AT_SYSINFO, %eax
	je	3f
	addl	$8, %esi
	jmp	2b
3:	movl	4(%esi), %edi			/* __kernel_vsyscall: keeps all but %eax */
	movl	$NR_getpid, %eax
	call	*%edi
	movl	%eax, %ebx
	movl	$CALLS, %esi
4:	movl	$NR_getpid, %eax
	call	*%edi
	cmpl	%eax, %ebx
	jne	wrong
	decl	%esi
	jnz	4b
	xorl	%ebx, %ebx
	jmp	leave
wrong:
	movl	$1, %ebx
	jmp	leave
no_vdso:
	movl	$2, %ebx
leave:
	movl	$NR_exit, %eax
	int	$0x80

	.section .note.GNU-stack,"",@progbits	/* no executable stack */
