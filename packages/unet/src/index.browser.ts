/**
 * Browser entry of `@diffssl/unet`: the U-Net graph, schedule and feature
 * extractor on onnxruntime-web (WebGPU, then WASM). Checkpoint files are read
 * in Node; in the browser, pass weights you loaded (for example with
 * `readSafetensors` from `@diffssl/core` on fetched bytes) to {@link AdmUNet}.
 *
 * @packageDocumentation
 */
import { createRunner } from '@diffssl/core';
import type { DiffusionUNet } from './diffusion-unet.js';
import { compileExtraction, openFeatureExtractor, type ExtractionOptions, type FeatureExtractor } from './extractor.js';

export * from './common.js';

/**
 * Creates a feature extractor on onnxruntime-web from a built U-Net.
 *
 * @param options - the U-Net (such as an {@link AdmUNet}), blocks, timesteps and extraction options
 * @throws `ConfigError` for blocks outside 1..N, timesteps outside [0, steps), a `classLabel` for an unconditional model
 * @public
 */
export async function createFeatureExtractor(options: ExtractionOptions & { unet: DiffusionUNet }): Promise<FeatureExtractor> {
  const { info, model } = compileExtraction(options.unet, options);
  return openFeatureExtractor(createRunner, model.serialize().model, info, options, false);
}
