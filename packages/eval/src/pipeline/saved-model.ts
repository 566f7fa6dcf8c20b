import type { ExampleSource } from '../training/classifier-graph.js';
import type { PipelineRuntimeOptions } from './runtime-options.js';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ConfigError, readSafetensors, type HostTensor } from '@diffssl/core';
import { createProtocolModel, protocolKind } from '../heads/registry.js';
import type { ProtocolModel, ProtocolSettings } from '../heads/head-kind.js';
import type { FeatureHeadClassifier } from '../protocols/feature-head.js';
import { pixelSource } from '../protocols/pixels.js';
import type { ClassificationMetrics } from '../metrics/classification.js';
import { evaluateClassifier } from '../training/trainer.js';
import { cacheSource, imageNoiseSource } from './sources.js';
import { openSplits, preparation, splitFeatures, type DataOptions } from './splits.js';
import { loadUNet, unetLoadDisplay, type LoadedUNet, type LoadUNetOptions } from './unet-source.js';
import { UNET_PREFIX } from '../protocols/finetune.js';

/** What `model.safetensors` records about the run that trained it. @public */
export interface SavedRunSettings {
  /** The protocol's model settings. */
  model: ProtocolSettings;
  /** The U-Net checkpoint the features came from (null for `pixels` and the freshly initialized `random`). */
  checkpoint: string | null;
  /** The U-Net's guided-diffusion flags file or preset (null for `pixels`). */
  config: string | null;
  /** The data the model was trained on, and how it was selected. */
  data: DataOptions;
  /** Class names in logit order. */
  classNames: string[];
  /** [C, H, W] of the raw images (the pixel baseline reads them). */
  imageShape: [number, number, number] | null;
  /** Noise seed of the features. */
  noiseSeed: number;
  /** Training settings, for the record. */
  training: Record<string, unknown>;
}

/** A trained model read back: the rebuilt model with its weights, and its settings. @public */
export interface SavedModel {
  /** The protocol's model with the saved weights loaded. */
  model: ProtocolModel;
  /** The settings the run recorded (protocol, data, training, noise seed). */
  settings: SavedRunSettings;
  /** The U-Net it reads (none for `pixels`): the fine-tuned one (`unet.safetensors` beside the model) for a fine-tuned run. */
  unet: LoadedUNet | undefined;
}

/**
 * Reads a model a run saved (`<dir>/model.safetensors`: weights under the
 * reference's names, run settings in the metadata) and rebuilds it; a
 * fine-tuned run's U-Net is read from `unet.safetensors` beside it.
 *
 * @param path - the run's output folder, or the model.safetensors file
 * @param options - a progress callback for reading and hashing the U-Net's checkpoint
 * @throws `ConfigError` for a file without run settings; `StateDictMismatchError` when the weights do not fit
 * @public
 */
export async function loadSavedModel(path: string, options: Pick<LoadUNetOptions, 'onProgress'> = {}): Promise<SavedModel> {
  const file = path.endsWith('.safetensors') ? path : join(path, 'model.safetensors');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    throw new ConfigError(`--model: cannot read ${file}: ${(cause as Error).message}`);
  }
  const { tensors, metadata } = readSafetensors(bytes);
  if (!metadata.run) throw new ConfigError(`--model: ${file} holds no run settings (it was not written by diffssl train)`);
  const settings = JSON.parse(metadata.run) as SavedRunSettings;
  const { unet: reads } = protocolKind(settings.model.protocol).protocol;
  const finetune = settings.model.finetune ?? false;
  const checkpoint = finetune ? join(dirname(file), 'unet.safetensors') : settings.checkpoint!;
  const unet =
    reads === 'none'
      ? undefined
      : await loadUNet({
          config: settings.config!,
          ...(reads === 'random' ? { randomInit: { seed: settings.model.seed ?? 0 } } : { checkpoint }),
          onProgress: options.onProgress,
        });
  const model = createProtocolModel(settings.model, unet?.unet, settings.imageShape ?? undefined);
  const weights = new Map<string, HostTensor>(tensors);
  // The fine-tuned U-Net's weights (unet.*) come with the U-Net itself.
  const fromUNet = (name: string) => finetune && name.startsWith(`${UNET_PREFIX}.`);
  for (const module of model.modules()) {
    const own = new Set(module.stateDict().keys());
    module.loadStateDict(new Map([...weights].filter(([name]) => own.has(name))), { allowMissing: fromUNet });
  }
  return { model, settings, unet };
}

/** Options of {@link evaluateSavedModel}. @public */
export interface EvaluateOptions extends PipelineRuntimeOptions {
  /** The run's output folder or its model.safetensors. */
  model: string;
  /** Other data to evaluate on (default: the training run's data); same classes. */
  data?: DataOptions;
  /** The feature cache root. */
  cacheDirectory: string;
  /** Images per evaluation batch (default 32). */
  batchSize?: number;
}

/** What {@link evaluateSavedModel} found. @public */
export interface SavedModelEvaluation {
  /** Top-1, top-5, per-class accuracy and the confusion matrix over every test image. */
  metrics: ClassificationMetrics;
  /** The model that was evaluated. */
  saved: SavedModel;
}

/**
 * Evaluates a trained model on every test image of its data (or of other
 * data with the same classes).
 *
 * @returns the metrics and the model's settings
 * @public
 */
export async function evaluateSavedModel(options: EvaluateOptions): Promise<SavedModelEvaluation> {
  const saved = await loadSavedModel(options.model, { onProgress: unetLoadDisplay(options.progress ?? 'auto') });
  const { model, settings, unet } = saved;
  const data = { ...settings.data, classNames: settings.classNames, ...options.data };
  const splits = await openSplits(data);
  if (splits.test.classes.join('\n') !== settings.classNames.join('\n'))
    throw new ConfigError(`--data: its classes (${splits.test.classes.join(', ')}) are not the model's (${settings.classNames.join(', ')})`);
  let source: ExampleSource;
  const cleanups: (() => Promise<void>)[] = [];
  // A fine-tuned model reads images, as it trained.
  const examples = settings.model.finetune ? 'images' : protocolKind(settings.model.protocol).protocol.examples;
  if (examples === 'pixels') {
    source = pixelSource(splits.test);
  } else if (examples === 'features') {
    const head = model as FeatureHeadClassifier;
    const cache = await splitFeatures(
      {
        ...data,
        unet: unet!,
        splits,
        blocks: head.blocks,
        timesteps: head.timesteps,
        pool: head.prePoolSize,
        noiseSeed: settings.noiseSeed,
        root: options.cacheDirectory,
        progress: options.progress,
        log: options.log,
      },
      'test',
      1,
    );
    cleanups.push(() => cache.close());
    source = cacheSource(cache, splits.test, [...head.features.keys()]);
  } else {
    source = imageNoiseSource(splits.test, {
      split: 'test',
      timesteps: model.timesteps,
      noiseSeed: settings.noiseSeed,
      seed: settings.model.seed ?? 0,
      test: preparation(splits.test, unet!.unet.info.imageSize, data.resize).test,
    });
  }
  try {
    return { metrics: await evaluateClassifier(model, source, { batchSize: options.batchSize, runner: options.runner }), saved };
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}
