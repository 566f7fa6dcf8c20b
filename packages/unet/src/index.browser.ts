/**
 * Browser entry of `@diffssl/unet`: the U-Net graph, schedule and feature
 * extractor on onnxruntime-web (WebGPU, then WASM). Checkpoint files are read
 * in Node; in the browser, pass weights you loaded (for example with
 * `readSafetensors` from `@diffssl/core` on fetched bytes) to {@link AdmUNet}.
 *
 * @packageDocumentation
 */
import { createRunner } from '@diffssl/core';
import type { AdmUNet } from './adm-unet.js';
import { buildExtractionModel, checkExtraction, extractionInfo, openFeatureExtractor, type ExtractionOptions, type FeatureExtractor } from './extractor.js';

export * from './common.js';

/**
 * Creates a feature extractor on onnxruntime-web from a built U-Net.
 *
 * @param options - the U-Net, blocks, timesteps and extraction options
 * @throws `ConfigError` for blocks outside 1..N or timesteps outside [0, steps)
 * @public
 */
export async function createFeatureExtractor(options: ExtractionOptions & { unet: AdmUNet }): Promise<FeatureExtractor> {
  const info = extractionInfo(options.unet);
  const model = buildExtractionModel(options.unet, checkExtraction(info, options), options.blocks, options.dtype ?? 'float32');
  return openFeatureExtractor(createRunner, model.serialize().model, info, options, false);
}
