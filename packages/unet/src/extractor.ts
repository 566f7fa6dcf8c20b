import {
  adaptiveAvgPool2d,
  add,
  ConfigError,
  fmix32,
  compileModel,
  gather,
  Graph,
  HostTensor,
  mul,
  NonFiniteError,
  reshape,
  ShapeError,
  type ModelSource,
  type OnnxModel,
  type Runner,
  type RunnerOptions,
  type SymbolicTensor,
} from '@diffssl/core';
import { UNET_PRECISIONS, type DiffusionUNet, type UNetPrecision } from './diffusion-unet.js';
import { checkTimestep, noiseSchedule, seededNoise, type NoiseSchedule, type NoiseSplit } from './schedule.js';
import { PIXEL_TO_MODEL } from './pixels.js';

/**
 * Version of the code that builds extraction graphs (the U-Net layers, the
 * extraction wrapper): part of every compiled-model cache key, so a changed
 * graph is never served from an old cache entry. Bump it with any change to
 * the graph built for the same inputs.
 */
export const EXTRACTION_GRAPH_VERSION = 2;

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
  /**
   * Compute precision: `float32` (default), `float16` (half-precision block
   * convolutions) or `int8` (block convolutions in 8-bit integers: weights
   * quantized per output channel when the model is built, activations per
   * tensor at run time; normalization, SiLU, softmax and residual adds in float32).
   */
  dtype?: UNetPrecision;
  /** Session options: providers (`auto` by default: CUDA, then WebGPU on a hardware adapter, then CPU), `strict`, threads. */
  runner?: RunnerOptions;
  /** Reject NaN or infinite input pixels (default true). */
  checkInputs?: boolean;
  /** Called after each batch. */
  onProgress?: (progress: { done: number; total: number }) => void;
  /**
   * Average-pool each block output to at most `pool` x `pool` (PyTorch's
   * adaptive pooling to min(resolution, pool)) inside the graph, so only the
   * pooled features leave ONNX Runtime. A head that pools to `pool` itself
   * (GD(L), DifFormer's pre-layers) computes exactly the same from them.
   * Default: no pooling.
   */
  pool?: number;
  /**
   * One class label (0..numClasses-1) for every image, for class-conditional
   * models; `labels` given to `extract`/`stream` take precedence. Refused by
   * unconditional models.
   */
  classLabel?: number;
}

/** Per-call options of {@link FeatureExtractor.extract} and {@link FeatureExtractor.stream}. @public */
export interface ExtractCallOptions {
  /**
   * Stable ids (integers in [0, 2^32)) that key each image's noise, such as
   * dataset indices. Default: a hash of each image's pixels, so that the same
   * image gets the same noise in any call, batch or position, and different
   * images get different noise.
   */
  ids?: readonly number[];
  /** One class label per image (0..numClasses-1), for class-conditional models. */
  labels?: readonly number[];
  /**
   * The split the images belong to: each split has its own noise stream, so
   * training image i and test image i get independent noise even with equal
   * ids (see `seededNoise`). Default `'test'`.
   */
  split?: NoiseSplit;
}

/** Features of one batch: `features.get('t150/block24')` is [n, C, h, w]. @public */
export interface FeatureBatch {
  /** Index of the batch's first image in the input. */
  start: number;
  /** The noise ids of the batch's images: the given ids, or the pixel hashes. */
  imageIds: number[];
  /** Features keyed `t{T}/block{NN}`. */
  features: Map<string, HostTensor<'float32'>>;
}

/** The key of a (timestep, block) feature. @public */
export function featureKey(timestep: number, block: number): string {
  return `t${timestep}/block${String(block).padStart(2, '0')}`;
}

/** What the extractor needs to know of the model (kept beside cached models). @public */
export interface ExtractionModelInfo {
  /** Side of the square input images in pixels. */
  imageSize: number;
  /** Image channels. */
  inChannels: number;
  /** Number of numbered blocks N (blocks run 1..N). */
  blockCount: number;
  /** Number of diffusion steps T of the noise schedule. */
  steps: number;
  /** The beta schedule. */
  schedule: 'linear' | 'cosine';
  /** Classes of a class-conditional model; null for an unconditional one. */
  numClasses: number | null;
}

/**
 * The noise id the extractor gives an image when no ids are passed:
 * MurmurHash3 (x86, 32-bit) of its float32 pixel words in [-1, 1] after
 * normalization, so uint8 and float inputs of the same image agree.
 *
 * @param pixels - one image's normalized pixels [C*H*W]
 * @returns an id in [0, 2^32) for `seededNoise`
 * @example
 * ```ts
 * const noise = seededNoise(seed, pixelNoiseId(image.data), 150, image.size);
 * ```
 * @public
 */
export function pixelNoiseId(pixels: Float32Array): number {
  const words = new Uint32Array(pixels.buffer, pixels.byteOffset, pixels.length);
  let h = 0x6a09e667;
  for (let i = 0; i < words.length; i++) {
    let k = Math.imul(words[i]!, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return fmix32(h ^ (words.length * 4));
}

/**
 * Extracts U-Net features for images: noises each image at every requested
 * timestep with seeded noise (`q_sample` inside the graph), runs the U-Net up
 * to the deepest requested block only, and returns the block outputs.
 *
 * @public
 */
export class FeatureExtractor {
  private released = false;

  /** @internal */
  constructor(
    private readonly runner: Runner,
    private readonly info: ExtractionModelInfo,
    private readonly options: ExtractionOptions,
    /** Whether the compiled model came from the cache directory (no checkpoint load, no rebuild). */
    readonly fromCache: boolean,
    private readonly cleanup?: () => Promise<void>,
  ) {}

  /** The execution provider in use. */
  get provider(): string {
    return this.runner.provider;
  }

  /** Number of classes of a class-conditional model, undefined for an unconditional one. */
  get numClasses(): number | undefined {
    return this.info.numClasses ?? undefined;
  }

  /**
   * Extracts features for a set of images, in batches, into one tensor per
   * feature allocated up front (each batch is written in place).
   *
   * @param images - float32 [N, C, H, W] in [-1, 1], or uint8 [N, 1|C, H, W] (scaled by {@link PIXEL_TO_MODEL}, gray replicated)
   * @param options - noise ids, class labels and split (see {@link ExtractCallOptions})
   * @returns one tensor [N, C, h, w] per `t{T}/block{NN}`
   * @throws `ShapeError` for a wrong image size or channel count or a wrong number of ids or labels; `NonFiniteError` for NaN pixels (when checking); `ConfigError` for bad ids, another split, labels missing for a class-conditional model or given to an unconditional one
   */
  async extract(images: HostTensor, options: ExtractCallOptions = {}): Promise<Map<string, HostTensor<'float32'>>> {
    const count = images.shape[0] ?? 0;
    const out = new Map<string, HostTensor<'float32'>>();
    for await (const batch of this.stream(images, options)) {
      for (const [key, tensor] of batch.features) {
        let target = out.get(key);
        if (!target) {
          target = HostTensor.zeros('float32', [count, ...tensor.shape.slice(1)]);
          out.set(key, target);
        }
        target.data.set(tensor.data, batch.start * (tensor.size / tensor.shape[0]!));
      }
    }
    return out;
  }

  /**
   * Streams features batch by batch, so that memory stays bounded for large
   * datasets (write each batch away before asking for the next). The noise
   * of an image, and so its features, do not depend on its batch or position.
   *
   * @param images - as {@link FeatureExtractor.extract}
   * @param options - as {@link FeatureExtractor.extract}
   * @throws as {@link FeatureExtractor.extract}
   */
  async *stream(images: HostTensor, options: ExtractCallOptions = {}): AsyncGenerator<FeatureBatch> {
    if (Array.isArray(options)) throw new ConfigError('FeatureExtractor: pass ids as { ids: [...] }; found an array');
    const normalized = this.normalizeImages(images);
    const count = normalized.shape[0]!;
    const ids = this.checkIds(count, options.ids);
    const labels = this.resolveLabels(count, options.labels);
    const split = options.split ?? 'test';
    if (split !== 'train' && split !== 'test') throw new ConfigError(`FeatureExtractor: split must be 'train' or 'test'; found ${JSON.stringify(split)}`);
    const batchSize = this.options.batchSize ?? 16;
    const { timesteps, blocks } = this.options;
    const perImage = count === 0 ? 0 : normalized.size / count;
    const pixels = (i: number) => normalized.data.subarray(i * perImage, (i + 1) * perImage);
    for (let start = 0; start < count; start += batchSize) {
      const end = Math.min(count, start + batchSize);
      const n = end - start;
      const batchIds = Array.from({ length: n }, (_, k) => ids?.[start + k] ?? pixelNoiseId(pixels(start + k)));
      const rows = n * timesteps.length;
      const x = new Float32Array(rows * perImage);
      const noise = new Float32Array(rows * perImage);
      const t = new BigInt64Array(rows);
      const y = labels ? new BigInt64Array(rows) : undefined;
      let row = 0;
      for (const timestep of timesteps) {
        for (let k = 0; k < n; k++) {
          x.set(pixels(start + k), row * perImage);
          noise.set(seededNoise(this.options.seed ?? 0, batchIds[k]!, timestep, perImage, split), row * perImage);
          t[row] = BigInt(timestep);
          if (y) y[row] = BigInt(labels![start + k]!);
          row++;
        }
      }
      const shape = [rows, ...normalized.shape.slice(1)];
      const feeds: Record<string, HostTensor> = {
        x_start: HostTensor.from('float32', shape, x),
        noise: HostTensor.from('float32', shape, noise),
        t: HostTensor.from('int64', [rows], t),
      };
      if (y) feeds.y = HostTensor.from('int64', [rows], y);
      const result = await this.runner.run(feeds);
      const features = new Map<string, HostTensor<'float32'>>();
      timesteps.forEach((timestep, ti) => {
        for (const block of blocks) {
          const all = result[`block${block}`] as HostTensor<'float32'>;
          const size = all.size / rows;
          features.set(
            featureKey(timestep, block),
            HostTensor.from('float32', [n, ...all.shape.slice(1)], all.data.subarray(ti * n * size, (ti + 1) * n * size)),
          );
        }
      });
      this.options.onProgress?.({ done: end, total: count });
      yield { start, imageIds: batchIds, features };
    }
  }

  private checkIds(count: number, ids: readonly number[] | undefined): readonly number[] | undefined {
    if (ids === undefined) return undefined;
    if (ids.length !== count) throw new ShapeError(`FeatureExtractor: expected ${count} image ids (one per image); found ${ids.length}`);
    const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id > 0xffffffff);
    if (bad !== undefined) throw new ConfigError(`FeatureExtractor: ids must be integers in [0, 2^32); found ${bad}`);
    return ids;
  }

  private resolveLabels(count: number, labels: readonly number[] | undefined): readonly number[] | undefined {
    const classes = this.info.numClasses;
    if (classes === null) {
      if (labels !== undefined) throw new ConfigError('FeatureExtractor: labels were given, but this U-Net is unconditional (class_cond false); remove labels');
      return undefined;
    }
    const fixed = this.options.classLabel;
    if (labels === undefined && fixed === undefined) {
      throw new ConfigError(
        `FeatureExtractor: this U-Net is class-conditional (${classes} classes); pass labels (one per image) to extract()/stream(), or classLabel to createFeatureExtractor`,
      );
    }
    const resolved = labels ?? new Array<number>(count).fill(fixed!);
    if (resolved.length !== count) throw new ShapeError(`FeatureExtractor: expected ${count} labels (one per image); found ${resolved.length}`);
    const bad = resolved.find((label) => !Number.isInteger(label) || label < 0 || label >= classes);
    if (bad !== undefined) throw new ConfigError(`FeatureExtractor: labels must be integers in 0..${classes - 1}; found ${bad}`);
    return resolved;
  }

  private normalizeImages(images: HostTensor): HostTensor<'float32'> {
    const { imageSize: size, inChannels } = this.info;
    if (images.rank !== 4 || images.shape[2] !== size || images.shape[3] !== size) {
      throw new ShapeError(
        `FeatureExtractor: expected images [N, ${inChannels}, ${size}, ${size}] (or uint8 [N, 1|${inChannels}, ${size}, ${size}]); found [${images.shape.join(', ')}]`,
      );
    }
    const channels = images.shape[1]!;
    if (images.dtype === 'uint8') {
      if (channels !== 1 && channels !== inChannels)
        throw new ShapeError(`FeatureExtractor: expected 1 or ${inChannels} channels of uint8 pixels; found ${channels}`);
      const n = images.shape[0]!;
      const pixels = images.contiguous().data as Uint8Array;
      const out = new Float32Array(n * inChannels * size * size);
      const plane = size * size;
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < inChannels; c++) {
          const source = (i * channels + (channels === 1 ? 0 : c)) * plane;
          for (let p = 0; p < plane; p++) out[(i * inChannels + c) * plane + p] = PIXEL_TO_MODEL[pixels[source + p]!]!;
        }
      }
      return HostTensor.from('float32', [n, inChannels, size, size], out);
    }
    if (images.dtype !== 'float32') throw new ShapeError(`FeatureExtractor: expected float32 or uint8 images; found ${images.dtype}`);
    if (channels !== inChannels) throw new ShapeError(`FeatureExtractor: expected ${inChannels} channels of float32 pixels in [-1, 1]; found ${channels}`);
    const dense = images.contiguous() as HostTensor<'float32'>;
    if (this.options.checkInputs ?? true) {
      const index = dense.data.findIndex((v) => !Number.isFinite(v));
      if (index >= 0)
        throw new NonFiniteError(`FeatureExtractor: image ${Math.floor(index / (inChannels * size * size))} has a non-finite pixel (${dense.data[index]})`);
    }
    return dense;
  }

  /** Releases the session and removes the temporary model files it was loaded from. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.runner.release();
    } finally {
      await this.cleanup?.();
    }
  }
}

/**
 * `q_sample` in a graph: `sqrt(abar_t) x_start + sqrt(1 - abar_t) noise` with
 * one timestep per image, the coefficients gathered from the schedule's
 * float64 tables rounded to float32 (as the reference computes them).
 *
 * @param schedule - the noise schedule
 * @param xStart - clean images [B, C, H, W]
 * @param noise - Gaussian noise shaped like `xStart`
 * @param timesteps - int64 [B]
 * @returns x_t [B, C, H, W]
 * @public
 */
export function qSampleGraph(schedule: NoiseSchedule, xStart: SymbolicTensor, noise: SymbolicTensor, timesteps: SymbolicTensor): SymbolicTensor {
  const graph = xStart.graph;
  const batch = xStart.shape[0]!;
  const coefficient = (table: Float64Array) =>
    reshape(gather(graph.constant(HostTensor.from('float32', [table.length], table)), timesteps, 0), [batch, 1, 1, 1]);
  return add(mul(coefficient(schedule.sqrtAlphasCumprod), xStart), mul(coefficient(schedule.sqrtOneMinusAlphasCumprod), noise));
}

/** Builds the extraction graph: q_sample, then the U-Net up to the deepest block, then the optional pooling. @public */
export function buildExtractionModel(unet: DiffusionUNet, schedule: NoiseSchedule, blocks: readonly number[], dtype: UNetPrecision, pool?: number): OnnxModel {
  const graph = new Graph();
  const { imageSize: size, inChannels, numClasses } = unet.info;
  const xStart = graph.input('x_start', 'float32', ['batch', inChannels, size, size]);
  const noise = graph.input('noise', 'float32', ['batch', inChannels, size, size]);
  const t = graph.input('t', 'int64', ['batch']);
  const classLabels = numClasses === undefined ? undefined : graph.input('y', 'int64', ['batch']);
  const xt = qSampleGraph(schedule, xStart, noise, t);
  const { blocks: taps } = unet.build(graph, { x: xt, timesteps: t, taps: blocks, dtype, ...(classLabels ? { classLabels } : {}) });
  const outputs: Record<string, SymbolicTensor> = {};
  for (const [number, tensor] of taps) {
    const resolution = tensor.shape[2] as number;
    outputs[`block${number}`] = pool !== undefined && pool < resolution ? adaptiveAvgPool2d(tensor, pool) : tensor;
  }
  return compileModel({ outputs, name: 'diffssl_feature_extractor' });
}

/** Model facts of a U-Net. */
export function extractionInfo(unet: DiffusionUNet): ExtractionModelInfo {
  const { imageSize, inChannels, diffusionSteps, noiseSchedule: schedule, numClasses } = unet.info;
  return { imageSize, inChannels, blockCount: unet.blocks.length, steps: diffusionSteps, schedule, numClasses: numClasses ?? null };
}

/**
 * Checks an extraction's `dtype` (undefined means float32).
 *
 * @throws `ConfigError` naming the allowed precisions when it is none of them
 */
export function checkPrecision(dtype: unknown): asserts dtype is UNetPrecision | undefined {
  if (dtype !== undefined && !(UNET_PRECISIONS as readonly unknown[]).includes(dtype))
    throw new ConfigError(`createFeatureExtractor: dtype must be one of ${UNET_PRECISIONS.join(', ')}; found ${JSON.stringify(dtype)}`);
}

/**
 * Checks extraction options against the model and returns its schedule.
 *
 * @throws `ConfigError` for an unknown dtype, no blocks or timesteps, a block outside 1..N, a timestep outside [0, steps), a bad batch size, a bad `classLabel` or one given to an unconditional model
 */
export function checkExtraction(info: ExtractionModelInfo, options: ExtractionOptions): NoiseSchedule {
  checkPrecision(options.dtype);
  if (options.blocks.length === 0) throw new ConfigError('createFeatureExtractor: expected at least one block; found none');
  if (options.timesteps.length === 0) throw new ConfigError('createFeatureExtractor: expected at least one timestep; found none');
  const batchSize = options.batchSize ?? 16;
  if (!Number.isSafeInteger(batchSize) || batchSize <= 0)
    throw new ConfigError(`createFeatureExtractor: batchSize must be a positive integer; found ${batchSize}`);
  for (const block of options.blocks) {
    if (!Number.isInteger(block) || block < 1 || block > info.blockCount)
      throw new ConfigError(`createFeatureExtractor: block ${block} is outside 1..${info.blockCount}`);
  }
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new ConfigError(`createFeatureExtractor: seed must be an integer in [0, 2^32); found ${seed}`);
  if (options.pool !== undefined && !(Number.isSafeInteger(options.pool) && options.pool > 0))
    throw new ConfigError(`createFeatureExtractor: pool must be a positive integer; found ${options.pool}`);
  if (options.classLabel !== undefined) {
    if (info.numClasses === null)
      throw new ConfigError('createFeatureExtractor: classLabel is set, but this U-Net is unconditional (class_cond false); remove classLabel');
    if (!Number.isInteger(options.classLabel) || options.classLabel < 0 || options.classLabel >= info.numClasses) {
      throw new ConfigError(`createFeatureExtractor: classLabel must be an integer in 0..${info.numClasses - 1}; found ${options.classLabel}`);
    }
  }
  const schedule = noiseSchedule(info.schedule, info.steps);
  for (const t of options.timesteps) checkTimestep(schedule, t);
  return schedule;
}

/**
 * The build sequence both entry points share: checks the options against the
 * U-Net and compiles the extraction model.
 *
 * @throws as {@link checkExtraction} and the U-Net's `build`
 */
export function compileExtraction(unet: DiffusionUNet, options: ExtractionOptions): { info: ExtractionModelInfo; model: OnnxModel } {
  const info = extractionInfo(unet);
  const schedule = checkExtraction(info, options);
  return { info, model: buildExtractionModel(unet, schedule, options.blocks, options.dtype ?? 'float32', options.pool) };
}

/** Opens a session for an extraction model with the entry point's `createRunner`. @internal */
export async function openFeatureExtractor(
  createRunner: (model: ModelSource, options?: RunnerOptions) => Promise<Runner>,
  model: ModelSource,
  info: ExtractionModelInfo,
  options: ExtractionOptions,
  fromCache: boolean,
  cleanup?: () => Promise<void>,
): Promise<FeatureExtractor> {
  checkExtraction(info, options);
  let runner: Runner;
  try {
    runner = await createRunner(model, options.runner);
  } catch (error) {
    await cleanup?.();
    throw error;
  }
  return new FeatureExtractor(runner, info, options, fromCache, cleanup);
}
