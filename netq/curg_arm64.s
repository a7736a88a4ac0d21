#include "textflag.h"

// func curg() uintptr
// On arm64 the current g is always in the g register (R28).
TEXT ·curg(SB),NOSPLIT,$0-8
	MOVD g, R0
	MOVD R0, ret+0(FP)
	RET
