// Declarations only: LLVMFuzzerRunDriver lives in libclang_rt.fuzzer, linked by -sanitize=fuzzer.
#include "CFuzzerDriver.h"
