import { ConfigError } from '@diffssl/core';
import type { ClassificationMetrics } from '../metrics/classification.js';
import { writeFilesAtomic } from './atomic-file.js';
import { confusionMatrixSvg, lineChartSvg } from './charts.js';
import { clock, markdownTable, percent } from './markdown.js';

/** One training epoch in a {@link RunReport}. @public */
export interface EpochRecord {
  /** From 1. */
  epoch: number;
  /** Mean training loss of the epoch. */
  loss: number;
  /** The learning rate used during the epoch. */
  learning_rate?: number;
  /** Wall time of the epoch in seconds. */
  seconds?: number;
}

/** One evaluation in a {@link RunReport}. @public */
export interface EvaluationRecord {
  /** The epoch after which it ran. */
  epoch: number;
  /** Percent. */
  top1: number;
  /** Top-5 accuracy, percent; null when only predictions (no logits) were scored. */
  top5?: number | null;
  /** Mean test cross-entropy. */
  loss?: number | null;
}

/**
 * The report of one training and evaluation run: the content of
 * `report.json`. Keys are snake_case because the file is read by other tools.
 *
 * @public
 */
export interface RunReport {
  /** linear, attention, difformer, diffeed, pixels, random, knn, ridge, ... */
  protocol: string;
  /** Top-1 accuracy, percent of all `test_images`. */
  top1: number;
  /** Top-5 accuracy, percent; null when only predictions (no logits) were scored. */
  top5?: number | null;
  /** How many test images were scored. */
  test_images: number;
  /** How many training images were used. */
  train_images?: number;
  /** Mean test cross-entropy. */
  test_loss?: number | null;
  /** Per-epoch training loss (and learning rate, time). */
  epochs: EpochRecord[];
  /** The evaluations on the test set during and after training. */
  evaluations?: EvaluationRecord[];
  /** Class names in class-index order. */
  class_names?: string[];
  /** Percent per class; null for a class without test images. */
  per_class_accuracy?: Array<number | null>;
  /** counts[true][predicted]. */
  confusion_matrix?: number[][];
  /** Wall time of the whole run in seconds. */
  wall_seconds?: number;
  /** The options of the run (checkpoint, blocks, timesteps, seed, ...). */
  settings?: Record<string, unknown>;
  /** Other results to print beside this one (baselines, the reference's numbers). */
  comparisons?: Array<{
    /** What the other result is. */
    name: string;
    /** Its top-1 accuracy in percent, or null when unknown. */
    top1: number | null;
    /** A remark printed beside it. */
    note?: string;
  }>;
  /** Remarks listed at the end of the report. */
  notes?: string[];
}

/**
 * The report fields that come from final test metrics.
 *
 * @param metrics - from `classificationMetrics` or a `MetricsAccumulator`
 * @returns top1, top5, test_images, test_loss, per_class_accuracy and confusion_matrix
 * @public
 */
export function reportFieldsFromMetrics(
  metrics: ClassificationMetrics,
): Pick<RunReport, 'top1' | 'top5' | 'test_images' | 'test_loss' | 'per_class_accuracy' | 'confusion_matrix'> {
  return {
    top1: metrics.top1,
    top5: metrics.top5,
    test_images: metrics.count,
    test_loss: metrics.meanCrossEntropy,
    per_class_accuracy: metrics.perClassAccuracy,
    confusion_matrix: metrics.confusionMatrix,
  };
}

function checkReport(report: RunReport): void {
  if (typeof report.protocol !== 'string' || report.protocol.length === 0) throw new ConfigError('run report: protocol is missing');
  if (!Number.isFinite(report.top1) || report.top1 < 0 || report.top1 > 100)
    throw new ConfigError(`run report: top1 must be a percentage; found ${report.top1}`);
  if (!Number.isSafeInteger(report.test_images) || report.test_images < 0)
    throw new ConfigError(`run report: test_images must be a count; found ${report.test_images}`);
  if (!Array.isArray(report.epochs)) throw new ConfigError('run report: epochs must be a list (empty for runs without training)');
  const classes = report.confusion_matrix?.length;
  if (report.class_names && classes !== undefined && report.class_names.length !== classes) {
    throw new ConfigError(`run report: ${report.class_names.length} class names for a ${classes}-class confusion matrix`);
  }
}

function settingValue(value: unknown): string {
  if (Array.isArray(value)) return value.join(', ');
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * The Markdown summary of a run (what `report.md` holds).
 *
 * @param report - the run
 * @param charts - which SVG files sit beside it (to embed)
 * @returns the Markdown text
 * @public
 */
export function runReportMarkdown(report: RunReport, charts: { loss?: string; accuracy?: string; confusion?: string } = {}): string {
  const out: string[] = [`# ${report.protocol}: ${report.top1.toFixed(2)} % top-1\n`];
  const summary: Array<[string, string]> = [
    ['top-1', percent(report.top1)],
    ['top-5', percent(report.top5)],
    ['test images scored', String(report.test_images)],
  ];
  if (report.train_images !== undefined) summary.push(['training images', String(report.train_images)]);
  if (report.test_loss !== undefined && report.test_loss !== null) summary.push(['mean test cross-entropy', report.test_loss.toFixed(4)]);
  if (report.epochs.length > 0) summary.push(['epochs', String(report.epochs.length)]);
  if (report.wall_seconds !== undefined) summary.push(['wall time', clock(report.wall_seconds)]);
  out.push(markdownTable(['', 'value'], summary, ['l', 'r']));
  if (report.comparisons?.length) {
    out.push('## Compared with\n');
    out.push(
      markdownTable(
        ['run', 'top-1', 'note'],
        [[`**this run (${report.protocol})**`, `**${percent(report.top1)}**`, ''], ...report.comparisons.map((c) => [c.name, percent(c.top1), c.note ?? ''])],
        ['l', 'r', 'l'],
      ),
    );
  }
  if (report.settings && Object.keys(report.settings).length > 0) {
    out.push('## Settings\n');
    out.push(
      markdownTable(
        ['setting', 'value'],
        Object.entries(report.settings).map(([k, v]) => [k, settingValue(v)]),
      ),
    );
  }
  if (report.epochs.length > 0) {
    out.push('## Training\n');
    if (charts.loss) out.push(`![training loss per epoch](${charts.loss})\n`);
    if (charts.accuracy) out.push(`![test accuracy per evaluation](${charts.accuracy})\n`);
    const evaluations = new Map((report.evaluations ?? []).map((e) => [e.epoch, e]));
    out.push(
      markdownTable(
        ['epoch', 'loss', 'learning rate', 'seconds', 'test top-1'],
        report.epochs.map((e) => [
          e.epoch,
          e.loss.toFixed(4),
          e.learning_rate === undefined ? '–' : String(e.learning_rate),
          e.seconds === undefined ? '–' : e.seconds.toFixed(1),
          percent(evaluations.get(e.epoch)?.top1),
        ]),
        ['r', 'r', 'r', 'r', 'r'],
      ),
    );
  }
  if (report.per_class_accuracy) {
    out.push('## Per class\n');
    if (charts.confusion) out.push(`![confusion matrix](${charts.confusion})\n`);
    const names = report.class_names ?? report.per_class_accuracy.map((_, i) => String(i));
    const counts = report.confusion_matrix?.map((row) => row.reduce((a, b) => a + b, 0));
    out.push(
      markdownTable(
        ['class', 'test images', 'accuracy'],
        report.per_class_accuracy.map((accuracy, i) => [names[i] ?? String(i), counts ? String(counts[i]) : '–', percent(accuracy)]),
        ['l', 'r', 'r'],
      ),
    );
  }
  if (report.notes?.length) out.push(`## Notes\n\n${report.notes.map((n) => `- ${n}`).join('\n')}\n`);
  return out.join('\n');
}

/**
 * Writes a run's report into a folder: `report.json` (the report as given),
 * `report.md` (summary tables) and the charts it embeds: `loss.svg` (training
 * loss per epoch), `accuracy.svg` (test top-1/top-5 per evaluation) and
 * `confusion.svg`. Each file is written atomically.
 *
 * @param directory - the output folder (created when missing)
 * @param report - the run
 * @returns the paths written
 * @throws {@link @diffssl/core!ConfigError} for an inconsistent report or an unwritable folder
 * @example
 * ```ts
 * await writeRunReport('runs/linear', { protocol: 'linear', ...reportFieldsFromMetrics(metrics), epochs, class_names });
 * ```
 * @public
 */
export async function writeRunReport(directory: string, report: RunReport): Promise<string[]> {
  checkReport(report);
  const files = new Map<string, string>();
  const charts: { loss?: string; accuracy?: string; confusion?: string } = {};
  const losses = report.epochs.filter((e) => Number.isFinite(e.loss));
  if (losses.length > 0) {
    charts.loss = 'loss.svg';
    files.set(
      charts.loss,
      lineChartSvg({
        title: `Training loss (${report.protocol})`,
        xLabel: 'epoch',
        yLabel: 'mean cross-entropy',
        series: [{ name: 'training loss', points: losses.map((e) => [e.epoch, e.loss]) }],
      }),
    );
  }
  const evaluations = report.evaluations ?? [];
  if (evaluations.length > 0) {
    charts.accuracy = 'accuracy.svg';
    const series = [{ name: 'top-1', points: evaluations.map((e) => [e.epoch, e.top1] as const) }];
    if (evaluations.some((e) => e.top5 !== undefined && e.top5 !== null))
      series.push({ name: 'top-5', points: evaluations.map((e) => [e.epoch, e.top5 ?? Number.NaN] as const) });
    files.set(
      charts.accuracy,
      lineChartSvg({ title: `Test accuracy (${report.protocol})`, xLabel: 'epoch', yLabel: 'accuracy (%)', series, yRange: [0, 100] }),
    );
  }
  if (report.confusion_matrix) {
    charts.confusion = 'confusion.svg';
    files.set(
      charts.confusion,
      confusionMatrixSvg(report.confusion_matrix, report.class_names, `Confusion matrix (${report.protocol}, ${report.test_images} test images)`),
    );
  }
  files.set('report.md', runReportMarkdown(report, charts));
  files.set('report.json', `${JSON.stringify(report, null, 2)}\n`);
  return writeFilesAtomic(directory, files);
}
