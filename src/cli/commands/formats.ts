/**
 * `mixq formats [--json]`: the table of every number format (bits, range, epsilon, inf/NaN).
 * `mixq formats show <name> [--json]`: one format (registered, alias or custom eXmY): its limits and every
 * code with its value (formats of <= 16 bits).
 */
import { defineCommand } from 'citty';
import {
  bitLayout,
  codeListing,
  describeFormat,
  type FormatRow,
  formatNumber,
  formatTable,
  parseFormat,
} from '../../formats/index.ts';
import { failCli, usageExitCode } from '../errors.ts';

function printTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: number[] = [],
): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  process.stdout.write(`${out.join('\n')}\n`);
}

function rowJson(r: FormatRow) {
  return {
    name: r.name,
    kind: r.kind,
    bits: r.bits,
    maxFinite: r.info.maxFinite,
    lowest: r.info.lowest,
    minNormal: r.info.minNormal,
    minSubnormal: r.info.minSubnormal,
    epsilon: r.info.epsilon,
    hasInf: r.info.hasInf,
    hasNan: r.info.hasNan,
    signed: r.info.signed,
    overflow: r.overflow,
    aliases: r.aliases,
    description: r.description,
  };
}

const show = defineCommand({
  meta: { name: 'show', description: 'Every code and value of one format (name, alias, or custom eXmY)' },
  args: {
    name: {
      type: 'positional',
      description: 'format name, e.g. fp8_e4m3fn, e4m3, e3m4, ue5m3',
      required: true,
    },
    json: { type: 'boolean', description: 'print machine-readable JSON only', default: false },
  },
  run({ args }) {
    let row: FormatRow;
    let spec: ReturnType<typeof parseFormat>;
    try {
      spec = parseFormat(String(args.name));
      row = describeFormat(spec);
    } catch (e) {
      failCli('formats show', e, usageExitCode(e));
    }
    const listable = row.bits <= 16;
    const codes = listable ? codeListing(spec) : [];
    if (args.json) {
      const body = { ...rowJson(row), layout: bitLayout(spec), codes: listable ? codes : null };
      // JSON has no NaN/inf: write them as strings
      const text = JSON.stringify(body, (_k, v: unknown) =>
        typeof v === 'number' && !Number.isFinite(v) ? formatNumber(v) : v,
      );
      process.stdout.write(`${text}\n`);
      return;
    }
    const i = row.info;
    const lines = [
      `${row.name}: ${row.description}`,
      `  layout        ${bitLayout(spec)} (${row.bits} bits)`,
      `  range         [${formatNumber(i.lowest)}, ${formatNumber(i.maxFinite)}]`,
      `  min normal    ${formatNumber(i.minNormal)}`,
      `  min subnormal ${formatNumber(i.minSubnormal)}`,
      `  epsilon       ${formatNumber(i.epsilon)}`,
      `  specials      ${row.specials}; overflow default: ${row.overflow}`,
    ];
    if (row.aliases.length > 0) lines.push(`  aliases       ${row.aliases.join(', ')}`);
    process.stdout.write(`${lines.join('\n')}\n\n`);
    if (!listable) {
      process.stdout.write(`(${row.bits}-bit codes: too many to list)\n`);
      return;
    }
    const hexDigits = Math.ceil(row.bits / 4);
    printTable(
      ['code', 'bits', 'value'],
      codes.map(({ code, value }) => [
        `0x${code.toString(16).padStart(hexDigits, '0')}`,
        code.toString(2).padStart(row.bits, '0'),
        Number.isNaN(value) ? 'NaN' : Object.is(value, -0) ? '-0' : String(value),
      ]),
    );
  },
});

export default defineCommand({
  meta: {
    name: 'formats',
    description: 'Table of every number format; `formats show <name>` lists its codes',
  },
  args: {
    json: { type: 'boolean', description: 'print machine-readable JSON only', default: false },
  },
  subCommands: { show },
  run({ args, rawArgs }) {
    if (rawArgs.includes('show')) return; // citty runs the parent after the subcommand
    const rows = formatTable();
    if (args.json) {
      const text = JSON.stringify(rows.map(rowJson), (_k, v: unknown) =>
        typeof v === 'number' && !Number.isFinite(v) ? formatNumber(v) : v,
      );
      process.stdout.write(`${text}\n`);
      return;
    }
    printTable(
      ['name', 'bits', 'max', 'min normal', 'min subnormal', 'epsilon', 'inf/NaN', 'overflow'],
      rows.map((r) => [
        r.name,
        String(r.bits),
        formatNumber(r.info.maxFinite),
        formatNumber(r.info.minNormal),
        formatNumber(r.info.minSubnormal),
        formatNumber(r.info.epsilon),
        r.specials,
        r.overflow,
      ]),
      [1],
    );
  },
});
