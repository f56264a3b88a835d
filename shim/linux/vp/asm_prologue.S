#include <machine/asm.h>
#include "nvmm_linux.h"
#if defined(CONFIG_RETHUNK) || defined(CONFIG_MITIGATION_RETHUNK)
/*
 * Linux built with return thunks (the retbleed mitigations) returns through __x86_return_thunk
 * and puts a trap after every return; make the backends' returns do the same.  The option is
 * CONFIG_MITIGATION_RETHUNK since 6.9.
 */
.macro retq
	jmp	__x86_return_thunk
	int3
.endm
#endif
