#include <machine/asm.h>
#include "nvmm_linux.h"
#ifdef CONFIG_RETHUNK
/*
 * Linux built with return thunks (the retbleed mitigations) returns through __x86_return_thunk
 * and puts a trap after every return; make the backends' returns do the same.
 */
.macro retq
	jmp	__x86_return_thunk
	int3
.endm
#endif
