/**
 * Vega-Lite spec -> static SVG, with Vega's headless renderer (`renderer: 'none'` + `toSVG()`): no DOM,
 * no canvas, no JavaScript at view time, so the SVG can be inlined in an offline HTML file. Both
 * libraries are imported lazily: importing src/report for JSON or terminal output does not load them.
 * Text in the SVG (axis labels, legend entries: names from model files) is escaped by Vega's markup
 * writer; the report tests check it.
 */
import type { TopLevelSpec } from 'vega-lite';

/** Render one chart to an SVG document string (`<svg ...>...</svg>`). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  // Silence Vega-Lite's advisory warnings (e.g. about encoding choices made on purpose here); errors throw.
  const logger = vega.logger(vega.Error);
  const compiled = vl.compile(spec, { logger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
