import { readFile, stat } from 'node:fs/promises';
import { ConfigError } from '@diffssl/core';
import {
  AdmUNet,
  admConfig,
  ADM_PRESETS,
  initialAdmWeights,
  loadCheckpoint,
  type AdmPresetName,
  type ExtractorSetupProgress,
  type GuidedDiffusionFlags,
} from '@diffssl/unet';
import { checkpointDigest } from '../cache/key.js';
import { createProgress, type Progress, type ProgressOptions } from '../progress.js';

/** A loaded U-Net and what identifies it in feature-cache keys. @public */
export interface LoadedUNet {
  /** The U-Net. */
  unet: AdmUNet;
  /** `sha256:<hex>` of the checkpoint file, or `random-init:<seed>` for a fresh U-Net. */
  identity: string;
  /** The flags (or preset name) it was built with. */
  config: GuidedDiffusionFlags | AdmPresetName;
}

/**
 * Reads guided-diffusion flags: a preset name, or a JSON file of flags.
 *
 * @throws `ConfigError` naming the file and what is wrong with it
 * @public
 */
export async function readFlags(config: string): Promise<GuidedDiffusionFlags | AdmPresetName> {
  if (config in ADM_PRESETS) return config as AdmPresetName;
  let text: string;
  try {
    text = await readFile(config, 'utf8');
  } catch (cause) {
    throw new ConfigError(
      `--config: '${config}' is neither a preset (${Object.keys(ADM_PRESETS).join(', ')}) nor a readable flags file: ${(cause as Error).message}`,
    );
  }
  try {
    return JSON.parse(text) as GuidedDiffusionFlags;
  } catch (cause) {
    throw new ConfigError(`--config: ${config} is not valid JSON: ${(cause as Error).message}`);
  }
}

/**
 * Progress of {@link loadUNet}: the checkpoint is read (into tensors) and
 * hashed (its SHA-256 identity) at once; `done` counts the bytes of both
 * passes, `total` is twice the file's size.
 *
 * @public
 */
export interface UNetLoadProgress {
  /** Bytes read plus bytes hashed so far. */
  done: number;
  /** Bytes of both passes in all. */
  total: number;
}

/** Options of {@link loadUNet}. @public */
export interface LoadUNetOptions {
  /** The checkpoint file (ignored with `randomInit`). */
  checkpoint?: string;
  /** The flags file or preset name. */
  config: string;
  /** Build a freshly initialized U-Net with this seed instead (the `random` baseline). */
  randomInit?: {
    /** Seed of the initialization. */
    seed: number;
  };
  /** Receives the progress of reading and hashing the checkpoint; nothing is printed by default. */
  onProgress?: (progress: UNetLoadProgress) => void;
}

/**
 * Loads a U-Net from a checkpoint and its flags, or builds a freshly
 * initialized one (the `random` baseline) from the flags alone.
 *
 * @param options - the checkpoint (ignored with `randomInit`), the flags or preset, the seed of a fresh U-Net, and a progress callback
 * @throws `ConfigError`, `FormatError` or `CheckpointMismatchError` for a bad checkpoint or flags
 * @public
 */
export async function loadUNet(options: LoadUNetOptions): Promise<LoadedUNet> {
  const config = await readFlags(options.config);
  if (options.randomInit) {
    return {
      unet: new AdmUNet(config, initialAdmWeights(admConfig(config), options.randomInit.seed)),
      identity: `random-init:${options.randomInit.seed}`,
      config,
    };
  }
  if (!options.checkpoint) throw new ConfigError('--checkpoint: expected a .pt, .pth or .safetensors file of U-Net weights');
  const { onProgress } = options;
  let total = 0;
  let read = 0;
  let hashed = 0;
  if (onProgress) {
    total = 2 * (await stat(options.checkpoint).catch(() => ({ size: 0 }))).size;
    onProgress({ done: 0, total });
  }
  const report = onProgress ? () => onProgress({ done: Math.min(total, read + hashed), total }) : undefined;
  const [weights, identity] = await Promise.all([
    // The storages hold nearly all of the file; the last report counts the whole file as read.
    loadCheckpoint(
      options.checkpoint,
      report
        ? {
            onProgress: (bytes, all) => {
              read = bytes === all ? total / 2 : bytes;
              report();
            },
          }
        : {},
    ),
    checkpointDigest(
      options.checkpoint,
      report
        ? (bytes) => {
            hashed = bytes;
            report();
          }
        : undefined,
    ),
  ]);
  return { unet: new AdmUNet(config, weights), identity, config };
}

/**
 * A display of {@link loadUNet}'s progress for the command line: a bar (or
 * occasional lines) of the megabytes read and hashed, on stderr.
 *
 * @param mode - the progress mode (`off` shows nothing)
 * @returns the `onProgress` callback
 * @internal
 */
export function unetLoadDisplay(mode: ProgressOptions['mode']): (progress: UNetLoadProgress) => void {
  let progress: Progress | undefined;
  let finished = false;
  return ({ done, total }) => {
    if (finished || total === 0) return;
    progress ??= createProgress({ label: 'U-Net checkpoint: read and hashed', total: Math.round(total / 1e6), unit: 'MB', mode, lineIntervalSeconds: 5 });
    progress.update(Math.round(done / 1e6));
    if (done >= total) {
      progress.finish();
      finished = true;
    }
  };
}

/**
 * Status lines for {@link @diffssl/unet!createFeatureExtractor}'s setup
 * (hashing, reading, building, compiling, cache reuse), for the command line.
 *
 * @param log - where the lines go (nothing without it)
 * @returns the `onProgress` callback, or undefined without `log`
 * @internal
 */
export function unetSetupLog(log: ((line: string) => void) | undefined): ((progress: ExtractorSetupProgress) => void) | undefined {
  if (!log) return undefined;
  let readingSaid = false;
  return (event) => {
    switch (event.stage) {
      case 'hash':
        return log('U-Net model: hashing the weights for the compiled-model cache key');
      case 'read':
        if (!readingSaid) log('U-Net model: reading the checkpoint');
        readingSaid = true;
        return;
      case 'build':
        return log('U-Net model: building the ONNX graph');
      case 'save':
        return log(`U-Net model: writing the compiled model to ${event.path}`);
      case 'cached':
        return log(`U-Net model: reusing the compiled model cached in ${event.path}`);
      case 'session':
        return log('U-Net model: ONNX Runtime is loading and optimizing the model');
      case 'ready':
        return log(`U-Net model: ready in ${event.seconds.toFixed(1)} s${event.fromCache ? ' (from the cache)' : ''}`);
    }
  };
}
