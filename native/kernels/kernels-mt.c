// The kernels of kernels.c built for a shared WebAssembly.Memory (worker threads, src/kernels/pool.node.ts).
// Every instance (one per thread) gets its own C stack: the pool sets __stack_pointer.
// wasm-variants: simd128 relaxed
// wasm-flags: -matomics
// wasm-ld: --import-memory --shared-memory --max-memory=4294967296 --export=__heap_base --export=__stack_pointer -z stack-size=32768
#include "kernels.c"
