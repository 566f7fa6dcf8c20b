import { ConfigError } from '@diffssl/core';

/**
 * Where progress goes. `process.stderr` fits; tests pass a stub.
 *
 * @public
 */
export interface ProgressStream {
  /** Writes text (no newline is added). */
  write(text: string): unknown;
  /** True for a terminal. */
  isTTY?: boolean;
  /** Terminal width (default 80). */
  columns?: number;
}

/** Options of {@link createProgress}. @public */
export interface ProgressOptions {
  /** What is running, e.g. `extract`. */
  label: string;
  /** Units of work in all; omit when unknown (no bar, percent or ETA then). */
  total?: number;
  /** Unit name, e.g. `img` (default `it`). */
  unit?: string;
  /** Default `process.stderr`. */
  stream?: ProgressStream;
  /**
   * `bar`: one line redrawn in place; `lines`: an occasional plain line
   * (logs, CI); `off`: nothing. Default `auto`: `bar` on a terminal, `lines`
   * otherwise.
   */
  mode?: 'auto' | 'bar' | 'lines' | 'off';
  /** `lines` mode: at least this many seconds between lines (default 30). */
  lineIntervalSeconds?: number;
  /** `lines` mode: at least this many percent of the total between lines (default 10; ignored without a total). */
  linePercentStep?: number;
  /** `bar` mode: at least this many milliseconds between redraws (default 100). */
  redrawIntervalMs?: number;
  /** Clock in milliseconds (default `performance.now`), for tests. */
  now?: () => number;
}

/**
 * Seconds as `m:ss`, or `h:mm:ss` from an hour on; `--:--` when unknown.
 *
 * @param seconds - a duration
 * @returns the text
 * @public
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const total = Math.round(seconds);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = String(total % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

/**
 * A rate as people read it: `1.2k img/s`, `345 img/s`, `12.5 img/s`, or
 * `4.0 s/img` below one unit per second; `? img/s` when unknown.
 *
 * @param perSecond - units per second
 * @param unit - the unit name
 * @returns the text
 * @public
 */
export function formatRate(perSecond: number, unit: string): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return `? ${unit}/s`;
  if (perSecond < 1) return `${(1 / perSecond).toFixed(1)} s/${unit}`;
  if (perSecond >= 10_000) return `${(perSecond / 1000).toFixed(0)}k ${unit}/s`;
  if (perSecond >= 1000) return `${(perSecond / 1000).toFixed(1)}k ${unit}/s`;
  if (perSecond >= 100) return `${perSecond.toFixed(0)} ${unit}/s`;
  return `${perSecond.toFixed(1)} ${unit}/s`;
}

/**
 * Progress of one long piece of work, with rate and ETA. On a terminal it
 * redraws one bar line in place; elsewhere it prints a plain line now and
 * then (by default at most every 30 s and every 10 %) and one closing line,
 * so logs stay short.
 *
 * @public
 */
export class Progress {
  private done = 0;
  private readonly started: number;
  private lastDraw = -Infinity;
  private lastLineTime: number;
  private lastLinePercent = 0;
  private finished = false;
  private readonly mode: 'bar' | 'lines' | 'off';
  private readonly stream: ProgressStream;
  private readonly now: () => number;

  /** @internal */
  constructor(private readonly options: ProgressOptions) {
    if (options.total !== undefined && !(Number.isFinite(options.total) && options.total >= 0))
      throw new ConfigError(`progress: total must be a number >= 0; found ${options.total}`);
    this.stream = options.stream ?? process.stderr;
    this.now = options.now ?? (() => performance.now());
    const mode = options.mode ?? 'auto';
    this.mode = mode === 'auto' ? (this.stream.isTTY ? 'bar' : 'lines') : mode;
    this.started = this.now();
    this.lastLineTime = this.started;
  }

  private get unit(): string {
    return this.options.unit ?? 'it';
  }

  /** Seconds since the start. */
  private elapsed(at: number): number {
    return (at - this.started) / 1000;
  }

  /** The status text: count, percent, rate and ETA. */
  private status(at: number): string {
    const { total } = this.options;
    const rate = this.done / Math.max(1e-9, this.elapsed(at));
    const parts = [total === undefined ? `${this.done} ${this.unit}` : `${this.done}/${total} ${this.unit}`];
    if (total !== undefined && total > 0) parts[0] += ` (${Math.floor((100 * this.done) / total)}%)`;
    parts.push(this.done > 0 ? formatRate(rate, this.unit) : `? ${this.unit}/s`);
    if (total !== undefined) parts.push(`ETA ${this.done > 0 ? formatDuration((total - this.done) / rate) : '--:--'}`);
    return parts.join(', ');
  }

  private drawBar(at: number, extra: string | undefined): void {
    const { total } = this.options;
    const columns = this.stream.columns ?? 80;
    const status = this.status(at);
    let line = `${this.options.label} ${status}${extra ? ` ${extra}` : ''}`;
    if (total !== undefined && total > 0) {
      const width = Math.max(10, Math.min(30, columns - line.length - 4));
      const filled = Math.min(width, Math.floor((width * this.done) / total));
      line = `${this.options.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${status}${extra ? ` ${extra}` : ''}`;
    }
    this.stream.write(`\r${line.slice(0, Math.max(20, columns - 1))}\x1b[K`);
  }

  /**
   * Sets how much is done.
   *
   * @param done - units done so far
   * @param extra - a short note to show (e.g. the current loss)
   */
  update(done: number, extra?: string): void {
    if (this.finished || this.mode === 'off') {
      this.done = done;
      return;
    }
    this.done = done;
    const at = this.now();
    if (this.mode === 'bar') {
      if (at - this.lastDraw >= (this.options.redrawIntervalMs ?? 100)) {
        this.lastDraw = at;
        this.drawBar(at, extra);
      }
      return;
    }
    const { total } = this.options;
    const percent = total ? (100 * done) / total : 0;
    const timeDue = at - this.lastLineTime >= (this.options.lineIntervalSeconds ?? 30) * 1000;
    const percentDue = !total || percent - this.lastLinePercent >= (this.options.linePercentStep ?? 10);
    if (timeDue && percentDue && (!total || done < total)) {
      this.lastLineTime = at;
      this.lastLinePercent = percent;
      this.stream.write(`${this.options.label}: ${this.status(at)}${extra ? `, ${extra}` : ''}\n`);
    }
  }

  /**
   * Adds to what is done.
   *
   * @param by - units just finished (default 1)
   * @param extra - a short note to show
   */
  increment(by = 1, extra?: string): void {
    this.update(this.done + by, extra);
  }

  /**
   * Ends the progress with a closing line: units, time and mean rate.
   *
   * @param note - a short note to append (e.g. the final accuracy)
   */
  finish(note?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.mode === 'off') return;
    const at = this.now();
    const seconds = this.elapsed(at);
    const { total } = this.options;
    const count = total === undefined ? `${this.done} ${this.unit}` : `${this.done}/${total} ${this.unit}`;
    const line = `${this.options.label}: done, ${count} in ${formatDuration(seconds)} (${formatRate(this.done / Math.max(1e-9, seconds), this.unit)})${note ? `, ${note}` : ''}`;
    this.stream.write(this.mode === 'bar' ? `\r${line}\x1b[K\n` : `${line}\n`);
  }
}

/**
 * Starts a progress display (see {@link Progress}).
 *
 * @param options - label, total, unit, stream and mode
 * @returns the progress
 * @throws {@link @diffssl/core!ConfigError} for a negative or non-finite total
 * @example
 * ```ts
 * const progress = createProgress({ label: 'extract', total: images, unit: 'img' });
 * for await (const batch of batches) progress.increment(batch.imageIds.length);
 * progress.finish();
 * ```
 * @public
 */
export function createProgress(options: ProgressOptions): Progress {
  return new Progress(options);
}
