import type { RunnerOptions } from '@diffssl/core';
import type { UNetPrecision } from '@diffssl/unet';
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
  /**
   * The frozen U-Net's compute precision when it extracts features
   * (`--precision`): `float32` (default), `float16` or `int8` (dynamic
   * quantization, see `@diffssl/unet`'s `dtype`). Part of the feature-cache
   * key. Protocols that run or train the U-Net themselves (DifFeed,
   * fine-tuning) stay float32 and refuse another precision.
   */
  precision?: UNetPrecision;
  /** Progress: `auto` (a bar on a terminal, quiet otherwise; the default), `bar`, `lines` or `off`. */
  progress?: ProgressOptions['mode'];
  /** Receives status lines (what was extracted or read from the cache, resumes, notes). */
  log?: (line: string) => void;
}
