/*
 * Reload TR after #VMEXIT.  LTR needs the TSS descriptor marked available and then sets its busy
 * bit (bit 41 of the descriptor, Intel SDM Vol. 3A 7.2.2, AMD APM Vol. 2 4.8.3) through GDTR.
 * Linux runs on a read-only alias of the GDT (the cpu_entry_area fixmap), so, as the kernel's own
 * force_reload_TR() does: clear the bit in this CPU's writable gdt_page, point GDTR at gdt_page
 * for the LTR, then load the read-only alias back.  %gs holds the kernel's base again here; RAX,
 * RCX and RDX are scratch.
 */
#define HOST_RESTORE_TR				\
	popq	%rax				;\
	movzwq	%ax,%rdx			;\
	movq	%gs:this_cpu_off,%rax		;\
	addq	$gdt_page,%rax			;\
	andq	$~0x0200,4(%rax,%rdx,1)		;\
	subq	$32,%rsp			;\
	sgdt	16(%rsp)			;\
	movw	16(%rsp),%cx			;\
	movw	%cx,(%rsp)			;\
	movq	%rax,2(%rsp)			;\
	lgdt	(%rsp)				;\
	ltrw	%dx				;\
	lgdt	16(%rsp)			;\
	addq	$32,%rsp
