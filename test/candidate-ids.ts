// The default candidate set's ids, written out (the ids users pass to --candidates), for the tests of the
// candidate sets (test/analysis/sensitivity.test.ts, test/pipeline/schemes.test.ts).
export const DEFAULT_CANDIDATE_IDS: readonly string[] = [
  'int8-pc-rtn',
  'int6-pc-rtn',
  'int5-g32-rtn',
  'int4-pc-rtn',
  'int4-g32-rtn',
  'int3-g32-rtn',
  'int2-g32-rtn',
  'fp8_e4m3fn-pc-rtn',
  'mxfp4-rtn',
  'nvfp4-rtn',
  'nf4-g64-rtn',
  'fp16-rtn',
];
