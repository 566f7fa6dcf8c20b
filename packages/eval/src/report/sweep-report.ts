import { ConfigError } from '@diffssl/core';
import { writeFilesAtomic } from './atomic-file.js';
import { heatmapSvg } from './charts.js';
import { clock, markdownTable } from './markdown.js';

/** One scored (block, timestep) cell of a sweep. @public */
export interface SweepCell {
  /** The U-Net block the features were read at. */
  block: number;
  /** The diffusion timestep t. */
  timestep: number;
  /** Top-1 accuracy, percent. */
  top1: number;
  /** Wall time of the cell in seconds. */
  seconds?: number;
}

/** A block x timestep sweep: the content of `sweep.json`. @public */
export interface SweepReport {
  /** What scored each cell: `knn`, `ridge`, `linear`, ... */
  scorer: string;
  /** The blocks swept (the heatmap's columns). */
  blocks: number[];
  /** The timesteps swept (the heatmap's rows). */
  timesteps: number[];
  /** Scored cells (a cell not listed is drawn as missing). */
  cells: SweepCell[];
  /** The best cell (filled in by {@link writeSweepReport}). */
  best?: SweepCell;
  /** The options of the sweep (checkpoint, seed, limits, ...). */
  settings?: Record<string, unknown>;
}

/**
 * The cell with the highest top-1 (ties: the lower timestep, then the lower block).
 *
 * @param sweep - the sweep
 * @returns the best cell
 * @throws {@link @diffssl/core!ConfigError} for a sweep without cells
 * @public
 */
export function bestSweepCell(sweep: Pick<SweepReport, 'cells'>): SweepCell {
  if (sweep.cells.length === 0) throw new ConfigError('sweep: no cell was scored');
  return [...sweep.cells].sort((a, b) => b.top1 - a.top1 || a.timestep - b.timestep || a.block - b.block)[0]!;
}

function checkSweep(sweep: SweepReport): void {
  const blocks = new Set(sweep.blocks);
  const timesteps = new Set(sweep.timesteps);
  const seen = new Set<string>();
  for (const cell of sweep.cells) {
    if (!blocks.has(cell.block) || !timesteps.has(cell.timestep))
      throw new ConfigError(`sweep: cell (block ${cell.block}, t=${cell.timestep}) is outside the blocks and timesteps of the sweep`);
    if (!Number.isFinite(cell.top1)) throw new ConfigError(`sweep: cell (block ${cell.block}, t=${cell.timestep}) has top1 ${cell.top1}`);
    const key = `${cell.block}/${cell.timestep}`;
    if (seen.has(key)) throw new ConfigError(`sweep: cell (block ${cell.block}, t=${cell.timestep}) appears twice`);
    seen.add(key);
  }
}

function grid(sweep: SweepReport): Array<Array<SweepCell | undefined>> {
  const cells = new Map(sweep.cells.map((c) => [`${c.block}/${c.timestep}`, c]));
  return sweep.timesteps.map((t) => sweep.blocks.map((b) => cells.get(`${b}/${t}`)));
}

/**
 * The sweep as a heatmap like the paper's block/timestep figure: blocks
 * left to right, timesteps top to bottom, colour and number = top-1, the best
 * cell outlined.
 *
 * @param sweep - the sweep
 * @returns the SVG text
 * @throws {@link @diffssl/core!ConfigError} for cells outside the grid, repeated or non-finite
 * @public
 */
export function sweepHeatmapSvg(sweep: SweepReport): string {
  checkSweep(sweep);
  const best = bestSweepCell(sweep);
  const cells = grid(sweep);
  return heatmapSvg({
    title: `Top-1 accuracy (%) by block and timestep (${sweep.scorer})`,
    rowLabels: sweep.timesteps.map((t) => `t=${t}`),
    columnLabels: sweep.blocks.map(String),
    rowTitle: 'timestep',
    columnTitle: 'block',
    values: cells.map((row) => row.map((c) => c?.top1 ?? null)),
    format: (v) => v.toFixed(1),
    highlight: [sweep.timesteps.indexOf(best.timestep), sweep.blocks.indexOf(best.block)],
    caption: `best: block ${best.block} at t=${best.timestep}, ${best.top1.toFixed(2)} % (outlined)`,
    cellAttributes: (r, c) => ({ 'data-block': sweep.blocks[c]!, 'data-timestep': sweep.timesteps[r]! }),
    cellWidth: 40,
  });
}

/**
 * The sweep as Markdown: one row per block, one column per timestep, the best
 * value in bold.
 *
 * @param sweep - the sweep
 * @param chart - the SVG file to embed, if any
 * @returns the Markdown text
 * @public
 */
export function sweepMarkdown(sweep: SweepReport, chart?: string): string {
  checkSweep(sweep);
  const best = bestSweepCell(sweep);
  const cells = grid(sweep);
  const out = [`# Block x timestep sweep (${sweep.scorer})\n`, `Best: block ${best.block} at t=${best.timestep}, **${best.top1.toFixed(2)} %** top-1.\n`];
  if (chart) out.push(`![top-1 by block and timestep](${chart})\n`);
  out.push(
    markdownTable(
      ['block', ...sweep.timesteps.map((t) => `t=${t}`)],
      sweep.blocks.map((b, c) => [
        String(b),
        ...sweep.timesteps.map((_t, r) => {
          const cell = cells[r]![c];
          if (!cell) return '–';
          const value = cell.top1.toFixed(2);
          return cell === best ? `**${value}**` : value;
        }),
      ]),
      ['r', ...sweep.timesteps.map(() => 'r' as const)],
    ),
  );
  const total = sweep.cells.reduce((sum, c) => sum + (c.seconds ?? 0), 0);
  if (total > 0) out.push(`Scoring time: ${clock(total)} for ${sweep.cells.length} cells.\n`);
  return out.join('\n');
}

/**
 * Writes `sweep.json`, `sweep.md` and `sweep.svg` into a folder, each atomically.
 *
 * @param directory - the output folder (created when missing)
 * @param sweep - the sweep
 * @returns the paths written
 * @throws {@link @diffssl/core!ConfigError} for an inconsistent sweep or an unwritable folder
 * @public
 */
export async function writeSweepReport(directory: string, sweep: SweepReport): Promise<string[]> {
  checkSweep(sweep);
  const withBest: SweepReport = { ...sweep, best: bestSweepCell(sweep) };
  const files: Array<[string, string]> = [
    ['sweep.svg', sweepHeatmapSvg(sweep)],
    ['sweep.md', sweepMarkdown(sweep, 'sweep.svg')],
    ['sweep.json', `${JSON.stringify(withBest, null, 2)}\n`],
  ];
  return writeFilesAtomic(directory, files);
}
