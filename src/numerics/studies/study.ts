/**
 * What a study returns: a table to print, points to plot (the CLI renders them to SVG with vega-lite), a
 * one-line headline, and the fingerprint of every number it computed (hashNumbers), which is the same on
 * every run and platform for the same parameters and seed.
 */
export type Cell = string | number;

export interface StudyTable {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
}

/** A plot as data: one mark per (x, y) point, lines grouped by `series`, optionally faceted by `panel`. */
export interface StudyPlot {
  readonly title: string;
  readonly x: { readonly label: string; readonly log?: boolean };
  readonly y: { readonly label: string; readonly log?: boolean };
  readonly points: readonly {
    readonly x: number;
    readonly y: number;
    readonly series: string;
    readonly panel?: string;
  }[];
  /** 'line' (default) or 'point'. */
  readonly mark?: 'line' | 'point';
}

export interface StudyResult {
  readonly name: string;
  readonly title: string;
  readonly params: Readonly<Record<string, Cell>>;
  readonly tables: readonly (StudyTable & { readonly title: string })[];
  readonly plot: StudyPlot;
  readonly headline: string;
  /** hashNumbers of every number the study computed, in a fixed order. */
  readonly hash: string;
}

/** Collects the numbers of a study in order, for its fingerprint. */
export class NumberLog {
  private readonly values: number[] = [];
  add(...xs: number[]): void {
    for (const x of xs) this.values.push(x);
  }
  addAll(xs: ArrayLike<number>): void {
    for (let i = 0; i < xs.length; i++) this.values.push(xs[i]!);
  }
  all(): number[] {
    return this.values;
  }
}

/** Short scientific notation for tables: 3 significant digits. */
export function sci(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? 'inf' : '-inf';
  if (x === 0) return '0';
  return x.toExponential(2);
}
