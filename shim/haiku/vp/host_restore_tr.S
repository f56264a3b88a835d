/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Reload TR after #VMEXIT.  LTR needs the TSS descriptor marked available and
 * then sets its busy bit (bit 41 of the descriptor, AMD APM Vol. 2 4.8.3).
 * Haiku x86_64 has one writable GDT for all CPUs, which only SGDT names
 * (descriptors.cpp keeps it static): clear the bit in the descriptor the
 * saved selector indexes, then load it.  RAX and RDX are scratch.
 */
#define HOST_RESTORE_TR				\
	popq	%rdx				;\
	movzwq	%dx,%rdx			;\
	subq	$16,%rsp			;\
	sgdt	(%rsp)				;\
	movq	2(%rsp),%rax			;\
	addq	$16,%rsp			;\
	andq	$~0x0200,4(%rax,%rdx,1)		;\
	ltrw	%dx
