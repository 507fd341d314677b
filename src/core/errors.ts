/**
 * The one error type mixq throws for bad input. It names where the problem is (a file, or an argument),
 * which field, and what was expected, so the CLI can print one clear line instead of a stack trace.
 */
export class MixqError extends Error {
  override readonly name = 'MixqError';
  /** File path or logical source (e.g. 'argument --format'); may be empty when unknown. */
  readonly source: string;
  /** The field, key or offset that was wrong, e.g. 'tensor_infos[3].n_dims'. */
  readonly field: string;
  /** What was expected, e.g. '1..4'. */
  readonly expected: string;

  constructor(message: string, opts: { source?: string; field?: string; expected?: string } = {}) {
    const where = [opts.source, opts.field].filter(Boolean).join(': ');
    const exp = opts.expected ? ` (expected ${opts.expected})` : '';
    super(`${where ? `${where}: ` : ''}${message}${exp}`);
    this.source = opts.source ?? '';
    this.field = opts.field ?? '';
    this.expected = opts.expected ?? '';
  }
}
