import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { createRunner, publishAtomically, saveModel, temporarySibling, type HostTensor, type OnnxModel } from '@diffssl/core';
import { AdmUNet } from './adm-unet.js';
import { loadCheckpoint } from './checkpoint/torch-checkpoint.js';
import { admConfig, type AdmPresetName, type GuidedDiffusionFlags } from './config.js';
import type { DiffusionUNet, UNetPrecision } from './diffusion-unet.js';
import {
  checkPrecision,
  compileExtraction,
  EXTRACTION_GRAPH_VERSION,
  openFeatureExtractor,
  type ExtractionModelInfo,
  type ExtractionOptions,
  type FeatureExtractor,
} from './extractor.js';
import { weightSpecs } from './layout.js';
import { createTemporaryDirectory, removeTemporary, trackTemporary } from './temporary-files.js';

/** Where the U-Net comes from: a built U-Net (such as {@link AdmUNet}), or a checkpoint file and its guided-diffusion flags. @public */
export type UNetSource =
  | {
      /** A built U-Net (its weights are already in memory). */
      unet: DiffusionUNet;
    }
  | {
      /** Path of a PyTorch (`.pt`) or safetensors checkpoint. */
      checkpoint: string;
      /** The checkpoint's guided-diffusion flags, or a preset name. */
      config: GuidedDiffusionFlags | AdmPresetName;
    };

/**
 * A step of {@link createFeatureExtractor}'s setup (its `onSetup`), for a progress display:
 * each step is announced as it starts (`read` also as it goes on). At
 * 256x256 reading, hashing, building and compiling each take seconds to tens
 * of seconds; a cached model skips reading and building.
 *
 * @public
 */
export type ExtractorSetupProgress =
  | {
      /** Hashing an in-memory U-Net's weights for the cache key. */
      stage: 'hash';
    }
  | {
      /** Reading the checkpoint. */
      stage: 'read';
      /** Bytes of weights read so far. */
      bytesRead: number;
      /** Bytes of weights in all (0 before the file's directory is read). */
      totalBytes: number;
    }
  | {
      /** Building the ONNX graph from the weights. */
      stage: 'build';
    }
  | {
      /** Writing the compiled model. */
      stage: 'save';
      /** Where: the cache entry, or a temporary file for a large model. */
      path: string;
    }
  | {
      /** Reusing a cached compiled model (no reading or building). */
      stage: 'cached';
      /** The cache entry. */
      path: string;
    }
  | {
      /** ONNX Runtime loads and optimizes the model (the session). */
      stage: 'session';
    }
  | {
      /** The extractor is ready. */
      stage: 'ready';
      /** Seconds since the setup began. */
      seconds: number;
      /** Whether the compiled model came from the cache. */
      fromCache: boolean;
    };

/** Options of the Node `createFeatureExtractor`. @public */
export type FeatureExtractorOptions = UNetSource &
  ExtractionOptions & {
    /** Directory for compiled `.onnx` files, so a second start neither loads the checkpoint nor rebuilds. */
    cacheDirectory?: string;
    /**
     * Without a cache directory, models whose weights exceed this many bytes
     * are written to a temporary `.onnx` with external data and loaded from
     * disk (removed on `release()` or at exit) instead of being serialized in
     * memory. Default 1.5e9 (protobuf cannot hold 2 GB).
     */
    externalDataThreshold?: number;
    /** Receives each setup step (reading, hashing, building, compiling, cache reuse); nothing is printed by default. (`onProgress` reports the extraction itself.) */
    onSetup?: (progress: ExtractorSetupProgress) => void;
  };

/** Version of the cache entry layout (info.json + model.onnx[.data]). */
const CACHE_FORMAT = 2;
const DEFAULT_EXTERNAL_DATA_THRESHOLD = 1_500_000_000;

/** Versions of this package and of @diffssl/core (whose ops lower the graph): part of every cache key. */
function codeVersions(): { unet: string; core: string } {
  const require = createRequire(import.meta.url);
  const version = (name: string) => (require(`${name}/package.json`) as { version: string }).version;
  return { unet: version('@diffssl/unet'), core: version('@diffssl/core') };
}

async function sourceFingerprint(source: UNetSource): Promise<string> {
  const hash = createHash('sha256');
  if ('checkpoint' in source) {
    const info = await stat(source.checkpoint);
    hash.update(JSON.stringify({ path: resolve(source.checkpoint), size: info.size, mtime: info.mtimeMs, config: source.config }));
  } else {
    for (const chunk of source.unet.identity()) hash.update(chunk);
  }
  return hash.digest('hex');
}

/** What a cache entry is keyed by (kept beside it as key.json). */
interface CacheKey {
  source: string;
  blocks: number[];
  pool: number | null;
  dtype: string;
  format: number;
  graph: number;
  versions: { unet: string; core: string };
}

/**
 * The key of a model's cache entry: the source, blocks and precision, the
 * cache layout, the graph-building code's version and the package versions,
 * so a fixed bug never serves a stale graph. The entry's name is a hash of it.
 */
async function cacheKey(options: FeatureExtractorOptions, dtype: string): Promise<{ key: CacheKey; name: string }> {
  const key: CacheKey = {
    source: await sourceFingerprint(options),
    blocks: [...options.blocks].sort((a, b) => a - b),
    pool: options.pool ?? null,
    dtype,
    format: CACHE_FORMAT,
    graph: EXTRACTION_GRAPH_VERSION,
    versions: codeVersions(),
  };
  return { key, name: `unet-${createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 24)}` };
}

/** The model facts of a complete cache entry, or undefined when there is none (or it is unreadable). */
async function readCacheEntry(entry: string): Promise<ExtractionModelInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(join(entry, 'info.json'), 'utf8')) as ExtractionModelInfo;
    if (typeof info !== 'object' || info === null || typeof info.imageSize !== 'number' || typeof info.blockCount !== 'number') return undefined;
    await stat(join(entry, 'model.onnx'));
    return info;
  } catch {
    return undefined;
  }
}

/**
 * Writes a cache entry: into a private temporary folder, then published with
 * core's `publishAtomically`. When another process published a complete entry
 * first, its entry is kept and ours dropped; a broken entry is moved aside and
 * replaced. The temporary folder is removed at exit if the process dies first.
 */
async function writeCacheEntry(entry: string, key: CacheKey, model: OnnxModel, info: ExtractionModelInfo): Promise<void> {
  const temporary = temporarySibling(entry);
  trackTemporary(temporary);
  try {
    await mkdir(temporary, { recursive: true });
    await saveModel(model, join(temporary, 'model.onnx'));
    await writeFile(join(temporary, 'key.json'), JSON.stringify(key));
    await writeFile(join(temporary, 'info.json'), JSON.stringify(info));
    await publishAtomically(temporary, entry, { isComplete: async (path) => (await readCacheEntry(path)) !== undefined });
  } finally {
    await removeTemporary(temporary);
  }
}

/**
 * Loads an ADM U-Net from a checkpoint file. Under float16 the weights that
 * will run in half precision are cast as each tensor is read, so the float32
 * copy of the model is never held whole.
 */
async function loadAdmUNet(
  path: string,
  flags: GuidedDiffusionFlags | AdmPresetName,
  dtype: UNetPrecision,
  onProgress?: (progress: ExtractorSetupProgress) => void,
): Promise<AdmUNet> {
  const config = admConfig(flags);
  const progress = onProgress ? (bytesRead: number, totalBytes: number) => onProgress({ stage: 'read', bytesRead, totalBytes }) : undefined;
  onProgress?.({ stage: 'read', bytesRead: 0, totalBytes: 0 });
  // int8 quantizes each convolution's float32 weight as the graph is built.
  if (dtype !== 'float16') return new AdmUNet(config, await loadCheckpoint(path, { onProgress: progress }));
  // Only tensors of the expected shape: a hostile file could otherwise name one huge view many times and have each cast.
  const halves = new Map(
    weightSpecs(config)
      .filter((spec) => spec.precision === 'compute')
      .map((spec) => [spec.name, spec.shape.join()]),
  );
  const transform = (name: string, tensor: HostTensor) => (halves.get(name) === tensor.shape.join() ? tensor.cast('float16') : tensor);
  return new AdmUNet(config, await loadCheckpoint(path, { transform, onProgress: progress }));
}

/**
 * Builds the extraction model and puts it where a session can load it: the
 * cache entry, a temporary `.onnx` with external data, or bytes. Kept apart
 * from opening the session so that the U-Net and the graph can be collected
 * before ONNX Runtime loads its own copy of the weights. (Exported for the
 * benchmark, which measures its memory.)
 *
 * @internal
 */
export async function buildModelSource(
  options: FeatureExtractorOptions,
  dtype: UNetPrecision,
  cache: { entry: string; key: CacheKey } | undefined,
): Promise<{ source: Uint8Array | string; info: ExtractionModelInfo; cleanup?: () => Promise<void> }> {
  const onProgress = options.onSetup;
  const unet = 'unet' in options ? options.unet : await loadAdmUNet(options.checkpoint, options.config, dtype, onProgress);
  onProgress?.({ stage: 'build' });
  const { info, model } = compileExtraction(unet, options);
  if (cache) {
    onProgress?.({ stage: 'save', path: cache.entry });
    await writeCacheEntry(cache.entry, cache.key, model, info);
    return { source: join(cache.entry, 'model.onnx'), info };
  }
  if (model.initializerBytes > (options.externalDataThreshold ?? DEFAULT_EXTERNAL_DATA_THRESHOLD)) {
    const directory = await createTemporaryDirectory('diffssl-unet-');
    onProgress?.({ stage: 'save', path: join(directory, 'model.onnx') });
    try {
      await saveModel(model, join(directory, 'model.onnx'), { externalDataThreshold: 1024 });
    } catch (error) {
      await removeTemporary(directory);
      throw error;
    }
    return { source: join(directory, 'model.onnx'), info, cleanup: () => removeTemporary(directory) };
  }
  return { source: model.serialize().model, info };
}

/**
 * Creates a feature extractor in Node. With `cacheDirectory`, the compiled
 * ONNX model is stored there (keyed by the checkpoint file's path, size and
 * modification time and the flags, or by an in-memory U-Net's configuration
 * and weight bytes, plus blocks, precision, the graph-building code's version
 * and the package versions) and reused on the next start without loading the
 * checkpoint or rebuilding the graph. Entries are written to a private
 * temporary folder and renamed into place, so a crash never leaves a
 * half-written entry and processes building the same entry at once all
 * succeed. Large models without a cache go to a temporary folder that
 * `release()` (or the end of the process) removes. `onSetup` reports each
 * setup step (nothing is printed by default).
 *
 * @example
 * ```ts
 * const extractor = await createFeatureExtractor({ checkpoint: 'adm.pt', config: flags, blocks: [5, 10], timesteps: [150] });
 * const features = await extractor.extract(images); // features.get('t150/block10')
 * // A class-conditional model (class_cond: true) needs labels:
 * const conditional = await createFeatureExtractor({ checkpoint: '256x256_diffusion.pt', config: '256x256_diffusion', blocks: [24], timesteps: [150], classLabel: 207 });
 * ```
 * @throws `ConfigError` for blocks outside 1..N, timesteps outside [0, steps), a `classLabel` for an unconditional model; `CheckpointMismatchError` when the flags do not fit the weights
 * @public
 */
export async function createFeatureExtractor(options: FeatureExtractorOptions): Promise<FeatureExtractor> {
  const started = performance.now();
  const onProgress = options.onSetup;
  const dtype = options.dtype ?? 'float32';
  checkPrecision(options.dtype);
  const open = async (source: Uint8Array | string, info: ExtractionModelInfo, fromCache: boolean, cleanup?: () => Promise<void>) => {
    onProgress?.({ stage: 'session' });
    const extractor = await openFeatureExtractor(createRunner, source, info, options, fromCache, cleanup);
    onProgress?.({ stage: 'ready', seconds: (performance.now() - started) / 1000, fromCache });
    return extractor;
  };
  let cache: { entry: string; key: CacheKey } | undefined;
  if (options.cacheDirectory) {
    await mkdir(options.cacheDirectory, { recursive: true });
    if ('unet' in options) onProgress?.({ stage: 'hash' });
    const { key, name } = await cacheKey(options, dtype);
    cache = { entry: join(options.cacheDirectory, name), key };
    const cached = await readCacheEntry(cache.entry);
    if (cached) {
      onProgress?.({ stage: 'cached', path: cache.entry });
      return open(join(cache.entry, 'model.onnx'), cached, true);
    }
  }
  const { source, info, cleanup } = await buildModelSource(options, dtype, cache);
  return open(source, info, false, cleanup);
}
