import type { RunnerOptions } from '@diffssl/core';
import type { ProgressOptions } from '../progress.js';

/**
 * How a pipeline step runs and reports, shared by {@link runProtocol},
 * {@link runSweep}, {@link extractFeatures}, {@link evaluateSavedModel} and
 * {@link cachedFeatures}.
 *
 * @public
 */
export interface PipelineRuntimeOptions {
  /** Where ONNX Runtime runs: providers, threads, `strict` (default: CUDA when present, else CPU, with a warning). */
  runner?: RunnerOptions;
  /** Progress: `auto` (a bar on a terminal, quiet otherwise; the default), `bar`, `lines` or `off`. */
  progress?: ProgressOptions['mode'];
  /** Receives status lines (what was extracted or read from the cache, resumes, notes). */
  log?: (line: string) => void;
}
