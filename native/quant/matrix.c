// Dense matrix kernels for src/quant, one thread, private memory (runs in any browser): see matrix.h.
// wasm-variants: simd128
// wasm-ld: --import-memory --stack-first -z stack-size=65536 --export=__heap_base
#include "matrix.h"
