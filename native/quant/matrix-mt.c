// Dense matrix kernels for src/quant on a shared memory, for worker threads (src/runtime/matrix-pool.node.ts):
// the same kernels as matrix.c (see matrix.h). Each thread's instance gets its own stack inside the shared
// memory through the exported __stack_pointer.
// wasm-variants: simd128
// wasm-flags: -matomics
// wasm-ld: --import-memory --shared-memory --max-memory=4294967296 --stack-first -z stack-size=65536 --export=__heap_base --export=__stack_pointer
#include "matrix.h"
