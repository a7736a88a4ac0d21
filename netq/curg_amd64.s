#include "textflag.h"

// func curg() uintptr
// In ABI0 (the ABI of assembly functions) the current g is in the thread-local slot.
TEXT ·curg(SB),NOSPLIT,$0-8
	MOVQ (TLS), AX
	MOVQ AX, ret+0(FP)
	RET
