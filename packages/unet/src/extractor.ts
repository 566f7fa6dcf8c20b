import {
  add, ConfigError, compileModel, gather, Graph, HostTensor, mul, NonFiniteError, reshape, ShapeError, type ModelSource, type OnnxModel, type Runner, type RunnerOptions, type SymbolicTensor,
} from '@diffssl/core';
import type { AdmUNet } from './adm-unet.js';
import { checkTimestep, noiseSchedule, seededNoise, type NoiseSchedule } from './schedule.js';

/** What to extract and how (shared by the Node and browser entry points). @public */
export interface ExtractionOptions {
  /** Block numbers to read (1..N). */
  blocks: readonly number[];
  /** Timesteps to read them at. */
  timesteps: readonly number[];
  /** Seed of the noise (see `seededNoise`). Default 0. */
  seed?: number;
  /** Images per session run (each image runs once per timestep). Default 16. */
  batchSize?: number;
  /** Compute precision. Default float32. */
  dtype?: 'float32' | 'float16';
  /** Session options: providers (`cuda` -> `cpu` by default), `strict`, threads. */
  runner?: RunnerOptions;
  /** Reject NaN or infinite input pixels (default true). */
  checkInputs?: boolean;
  /** Called after each batch. */
  onProgress?: (progress: { done: number; total: number }) => void;
}

/** Features of one batch: `features.get('t150/block24')` is [n, C, h, w]. @public */
export interface FeatureBatch {
  /** Ids of the images in this batch. */
  imageIds: number[];
  /** Features keyed `t{T}/block{NN}`. */
  features: Map<string, HostTensor<'float32'>>;
}

/** The key of a (timestep, block) feature. @public */
export function featureKey(timestep: number, block: number): string {
  return `t${timestep}/block${String(block).padStart(2, '0')}`;
}

/** What the extractor needs to know of the model (kept beside cached models). */
export interface ExtractionModelInfo {
  imageSize: number;
  blockCount: number;
  steps: number;
  schedule: 'linear' | 'cosine';
}

/**
 * Extracts U-Net features for images: noises each image at every requested
 * timestep with seeded noise (`q_sample` inside the graph), runs the U-Net up
 * to the deepest requested block only, and returns the block outputs.
 *
 * @public
 */
export class FeatureExtractor {
  /** @internal */
  constructor(
    private readonly runner: Runner,
    private readonly info: ExtractionModelInfo,
    private readonly schedule: NoiseSchedule,
    private readonly options: ExtractionOptions,
    /** Whether the compiled model came from the cache directory (no checkpoint load, no rebuild). */
    readonly fromCache: boolean,
  ) {}

  /** The execution provider in use. */
  get provider(): string {
    return this.runner.provider;
  }

  /**
   * Extracts features for a set of images, in batches.
   *
   * @param images - float32 [N, 3, H, W] in [-1, 1], or uint8 [N, 1|3, H, W] (scaled by /127.5 - 1, gray replicated to RGB)
   * @param imageIds - stable ids for the noise (default 0..N-1); the noise of an image does not depend on the batch it is in
   * @returns one tensor [N, C, h, w] per `t{T}/block{NN}`
   * @throws `ShapeError` for a wrong image size or channel count, `NonFiniteError` for NaN pixels (when checking)
   */
  async extract(images: HostTensor, imageIds?: readonly number[]): Promise<Map<string, HostTensor<'float32'>>> {
    const count = images.shape[0] ?? 0;
    const ids = imageIds ?? Array.from({ length: count }, (_, i) => i);
    const parts = new Map<string, Float32Array[]>();
    const shapes = new Map<string, number[]>();
    for await (const batch of this.stream(images, ids)) {
      for (const [key, tensor] of batch.features) {
        if (!parts.has(key)) parts.set(key, []);
        parts.get(key)!.push(tensor.data);
        shapes.set(key, tensor.shape.slice(1) as number[]);
      }
    }
    const out = new Map<string, HostTensor<'float32'>>();
    for (const [key, chunks] of parts) {
      const data = new Float32Array(chunks.reduce((a, c) => a + c.length, 0));
      let offset = 0;
      for (const chunk of chunks) {
        data.set(chunk, offset);
        offset += chunk.length;
      }
      out.set(key, HostTensor.from('float32', [count, ...shapes.get(key)!], data));
    }
    return out;
  }

  /**
   * Streams features batch by batch, so that memory stays bounded for large
   * datasets (write each batch away before asking for the next).
   *
   * @param images - as {@link FeatureExtractor.extract}
   * @param imageIds - as {@link FeatureExtractor.extract}
   */
  async *stream(images: HostTensor, imageIds: readonly number[]): AsyncGenerator<FeatureBatch> {
    const normalized = this.normalizeImages(images);
    const count = normalized.shape[0]!;
    if (imageIds.length !== count) throw new ShapeError(`FeatureExtractor: expected ${count} image ids; found ${imageIds.length}`);
    const batchSize = this.options.batchSize ?? 16;
    const { timesteps, blocks } = this.options;
    const perImage = normalized.size / Math.max(1, count);
    for (let start = 0; start < count; start += batchSize) {
      const end = Math.min(count, start + batchSize);
      const rows = (end - start) * timesteps.length;
      const x = new Float32Array(rows * perImage);
      const noise = new Float32Array(rows * perImage);
      const t = new BigInt64Array(rows);
      let row = 0;
      for (const timestep of timesteps) {
        for (let i = start; i < end; i++) {
          x.set(normalized.data.subarray(i * perImage, (i + 1) * perImage), row * perImage);
          noise.set(seededNoise(this.options.seed ?? 0, imageIds[i]!, timestep, perImage), row * perImage);
          t[row] = BigInt(timestep);
          row++;
        }
      }
      const shape = [rows, ...normalized.shape.slice(1)];
      const result = await this.runner.run({ x_start: HostTensor.from('float32', shape, x), noise: HostTensor.from('float32', shape, noise), t: HostTensor.from('int64', [rows], t) });
      const features = new Map<string, HostTensor<'float32'>>();
      timesteps.forEach((timestep, ti) => {
        for (const block of blocks) {
          const all = result[`block${block}`] as HostTensor<'float32'>;
          const n = end - start;
          const size = all.size / rows;
          features.set(featureKey(timestep, block), HostTensor.from('float32', [n, ...all.shape.slice(1)], all.data.subarray(ti * n * size, (ti + 1) * n * size)));
        }
      });
      this.options.onProgress?.({ done: end, total: count });
      yield { imageIds: imageIds.slice(start, end), features };
    }
  }

  private normalizeImages(images: HostTensor): HostTensor<'float32'> {
    const size = this.info.imageSize;
    if (images.rank !== 4 || images.shape[2] !== size || images.shape[3] !== size) {
      throw new ShapeError(`FeatureExtractor: expected images [N, 3, ${size}, ${size}] (or uint8 [N, 1|3, ${size}, ${size}]); found [${images.shape.join(', ')}]`);
    }
    const channels = images.shape[1]!;
    if (images.dtype === 'uint8') {
      if (channels !== 1 && channels !== 3) throw new ShapeError(`FeatureExtractor: expected 1 or 3 channels of uint8 pixels; found ${channels}`);
      const n = images.shape[0]!;
      const pixels = images.contiguous().data as Uint8Array;
      const out = new Float32Array(n * 3 * size * size);
      const plane = size * size;
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < 3; c++) {
          const source = (i * channels + (channels === 1 ? 0 : c)) * plane;
          for (let p = 0; p < plane; p++) out[(i * 3 + c) * plane + p] = pixels[source + p]! / 127.5 - 1;
        }
      }
      return HostTensor.from('float32', [n, 3, size, size], out);
    }
    if (images.dtype !== 'float32') throw new ShapeError(`FeatureExtractor: expected float32 or uint8 images; found ${images.dtype}`);
    if (channels !== 3) throw new ShapeError(`FeatureExtractor: expected 3 channels of float32 pixels in [-1, 1]; found ${channels}`);
    const dense = images.contiguous() as HostTensor<'float32'>;
    if (this.options.checkInputs ?? true) {
      const index = dense.data.findIndex((v) => !Number.isFinite(v));
      if (index >= 0) throw new NonFiniteError(`FeatureExtractor: image ${Math.floor(index / (3 * size * size))} has a non-finite pixel (${dense.data[index]})`);
    }
    return dense;
  }

  /** Releases the session. */
  async release(): Promise<void> {
    await this.runner.release();
  }
}

/** Builds the extraction graph: q_sample, then the U-Net up to the deepest block. */
export function buildExtractionModel(unet: AdmUNet, schedule: NoiseSchedule, blocks: readonly number[], dtype: 'float32' | 'float16'): OnnxModel {
  const graph = new Graph();
  const size = unet.config.imageSize;
  const xStart = graph.input('x_start', 'float32', ['batch', 3, size, size]);
  const noise = graph.input('noise', 'float32', ['batch', 3, size, size]);
  const t = graph.input('t', 'int64', ['batch']);
  const coefficient = (table: Float64Array) => reshape(gather(graph.constant(HostTensor.from('float32', [table.length], table)), t, 0), ['batch', 1, 1, 1]);
  const xt = add(mul(coefficient(schedule.sqrtAlphasCumprod), xStart), mul(coefficient(schedule.sqrtOneMinusAlphasCumprod), noise));
  const { blocks: taps } = unet.build(graph, { x: xt, timesteps: t, taps: blocks, dtype });
  const outputs: Record<string, SymbolicTensor> = {};
  for (const [number, tensor] of taps) outputs[`block${number}`] = tensor;
  return compileModel({ outputs, name: 'diffssl_feature_extractor' });
}

/** Model facts of a built U-Net. */
export function extractionInfo(unet: AdmUNet): ExtractionModelInfo {
  return { imageSize: unet.config.imageSize, blockCount: unet.blockCount, steps: unet.config.diffusionSteps, schedule: unet.config.noiseSchedule };
}

/**
 * Checks extraction options against the model and returns its schedule.
 *
 * @throws `ConfigError` for no blocks or timesteps, a block outside 1..N, a timestep outside [0, steps), a bad batch size
 */
export function checkExtraction(info: ExtractionModelInfo, options: ExtractionOptions): NoiseSchedule {
  if (options.blocks.length === 0) throw new ConfigError('createFeatureExtractor: expected at least one block; found none');
  if (options.timesteps.length === 0) throw new ConfigError('createFeatureExtractor: expected at least one timestep; found none');
  const batchSize = options.batchSize ?? 16;
  if (!Number.isSafeInteger(batchSize) || batchSize <= 0) throw new ConfigError(`createFeatureExtractor: batchSize must be a positive integer; found ${batchSize}`);
  for (const block of options.blocks) {
    if (!Number.isInteger(block) || block < 1 || block > info.blockCount) throw new ConfigError(`createFeatureExtractor: block ${block} is outside 1..${info.blockCount}`);
  }
  const schedule = noiseSchedule(info.schedule, info.steps);
  for (const t of options.timesteps) checkTimestep(schedule, t);
  return schedule;
}

/** Opens a session for an extraction model with the entry point's `createRunner`. @internal */
export async function openFeatureExtractor(
  createRunner: (model: ModelSource, options?: RunnerOptions) => Promise<Runner>,
  model: ModelSource,
  info: ExtractionModelInfo,
  options: ExtractionOptions,
  fromCache: boolean,
): Promise<FeatureExtractor> {
  const schedule = checkExtraction(info, options);
  return new FeatureExtractor(await createRunner(model, options.runner), info, schedule, options, fromCache);
}
