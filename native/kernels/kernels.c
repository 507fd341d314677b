// Matrix x vector and matrix x matrix kernels for every weight format mixq writes, on float32 activations
// and on int8 activation blocks (src/kernels/: the TypeScript side, its references and the registry).
// Single-threaded build (its memory is an ordinary imported WebAssembly.Memory); kernels-mt.c builds the
// same code for a shared memory and worker threads.
// wasm-variants: simd128 relaxed
// wasm-ld: --import-memory --export=__heap_base --export=__stack_pointer -z stack-size=32768
#include "dense.h"
#include "sliced.h"
#include "ggml.h"
#include "ggml-k.h"
#include "lut.h"
#include "attention.h"
