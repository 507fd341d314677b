/**
 * The WebAssembly JavaScript API (W3C WebAssembly JS API 2.0), declared here because TypeScript ships it
 * only in lib.dom / lib.webworker and this package compiles against ES2022 + Node types. Only the parts
 * mixq uses; the shapes follow lib.dom.d.ts.
 */
declare namespace WebAssembly {
  type ImportValue = ExportValue | number | bigint;
  type ExportValue = ((...args: never[]) => unknown) | Memory | Global | Table;
  type ModuleImports = Record<string, ImportValue>;
  type Imports = Record<string, ModuleImports>;
  type Exports = Record<string, ExportValue>;
  type BufferSource = ArrayBufferView | ArrayBuffer;
  interface ModuleDescriptor {
    readonly kind: 'function' | 'table' | 'memory' | 'global' | 'tag';
    readonly module?: string;
    readonly name: string;
  }
  interface ModuleImportDescriptor {
    readonly kind: 'function' | 'table' | 'memory' | 'global' | 'tag';
    readonly module: string;
    readonly name: string;
  }
  class Module {
    constructor(bytes: BufferSource);
    static imports(module: Module): ModuleImportDescriptor[];
    static exports(module: Module): ModuleDescriptor[];
  }
  class Instance {
    constructor(module: Module, imports?: Imports);
    readonly exports: Exports;
  }
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  class Global {
    constructor(descriptor: { value: string; mutable?: boolean }, v?: unknown);
    value: unknown;
  }
  class Table {
    constructor(descriptor: { element: string; initial: number; maximum?: number });
    readonly length: number;
  }
  interface WebAssemblyInstantiatedSource {
    module: Module;
    instance: Instance;
  }
  function validate(bytes: BufferSource): boolean;
  function compile(bytes: BufferSource): Promise<Module>;
  function instantiate(bytes: BufferSource, imports?: Imports): Promise<WebAssemblyInstantiatedSource>;
  function instantiate(module: Module, imports?: Imports): Promise<Instance>;
}
