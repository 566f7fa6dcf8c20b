/**
 * Datasets, the training loop, metrics, the feature cache, sweeps, reports
 * and the `diffssl` command line. Today: the `diffssl unet-run` reference-check
 * command (also callable as {@link unetRun}); the training and evaluation
 * pipeline arrives with its own issue.
 *
 * @packageDocumentation
 * @module @diffssl/eval
 */
export { unetRun, parseBlocks, type UNetRunOptions } from './commands/unet-run.js';
export * from './data/index.js';
export * from './cache/index.js';
export * from './metrics/index.js';
export * from './probes/index.js';
export * from './report/index.js';
export { createProgress, formatDuration, formatRate, Progress, type ProgressOptions, type ProgressStream } from './progress.js';
