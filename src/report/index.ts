/**
 * Report rendering. This entry point is light (types, JSON, terminal summary, chart specs); the HTML
 * renderer pulls in Vega and Vega-Lite, so it lives in './html.ts' and is imported lazily by the CLI:
 *   const { renderHtmlReport } = await import('../report/html.ts');
 */
export { bitsMapSpec, orderLayers, paretoSpec, sensitivitySpec } from './charts.ts';
export { parseReportJson, reportJson } from './json.ts';
export {
  equalSizeRows,
  type EqualSizeRow,
  formatBytes,
  formatMs,
  formatFigure,
  formatPercent,
  metricAt,
} from './summary.ts';
export { renderTerminalSummary, stripAnsi, type TerminalOptions } from './terminal.ts';
export * from './types.ts';
