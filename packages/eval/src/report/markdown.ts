import { formatDuration } from '../progress.js';

/** Escapes a table cell: pipes and line breaks. */
function cell(value: string): string {
  return value.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/**
 * A GitHub-flavoured Markdown table.
 *
 * @param headers - column headers
 * @param rows - cells as text (numbers are written as given)
 * @param align - per column `l` or `r` (default: left)
 * @returns the table, ending with a newline
 * @public
 */
export function markdownTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>, align: readonly ('l' | 'r')[] = []): string {
  const line = (cells: ReadonlyArray<string | number>) => `| ${cells.map((c) => cell(String(c))).join(' | ')} |`;
  const rule = `| ${headers.map((_, i) => (align[i] === 'r' ? '---:' : '---')).join(' | ')} |`;
  return `${[line(headers), rule, ...rows.map(line)].join('\n')}\n`;
}

/** A percentage with two decimals, or an en dash for none. */
export function percent(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : `${value.toFixed(2)} %`;
}

/** Seconds as `h:mm:ss` or `m:ss`. */
export function clock(seconds: number): string {
  return Number.isFinite(seconds) && seconds >= 0 ? formatDuration(seconds) : '–';
}
