/*
 * Reload TR after #VMEXIT.  LTR needs the TSS descriptor marked available, so clear its busy bit
 * (bit 41 of the descriptor, Intel SDM Vol. 3A 7.2.2) in this CPU's writable GDT, Linux's per-CPU
 * gdt_page (%gs still holds the kernel's base here).
 */
#define HOST_RESTORE_TR				\
	popq	%rax				;\
	movzwq	%ax,%rdx			;\
	movq	%gs:this_cpu_off,%rax		;\
	addq	$gdt_page,%rax			;\
	andq	$~0x0200,4(%rax,%rdx,1)		;\
	ltrw	%dx
