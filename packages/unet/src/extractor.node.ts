import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRunner, saveModel } from '@diffssl/core';
import { AdmUNet } from './adm-unet.js';
import { loadCheckpoint } from './checkpoint/torch-checkpoint.js';
import type { AdmPresetName, GuidedDiffusionFlags } from './config.js';
import { buildExtractionModel, checkExtraction, extractionInfo, openFeatureExtractor, type ExtractionModelInfo, type ExtractionOptions, type FeatureExtractor } from './extractor.js';

/** Where the U-Net comes from: a built {@link AdmUNet}, or a checkpoint file and its flags. @public */
export type UNetSource = { unet: AdmUNet } | { checkpoint: string; config: GuidedDiffusionFlags | AdmPresetName };

/** Options of the Node `createFeatureExtractor`. @public */
export type FeatureExtractorOptions = UNetSource &
  ExtractionOptions & {
    /** Directory for compiled `.onnx` files, so a second start neither loads the checkpoint nor rebuilds. */
    cacheDirectory?: string;
  };

const CACHE_VERSION = 1;

async function sourceFingerprint(source: UNetSource): Promise<string> {
  const hash = createHash('sha256');
  if ('checkpoint' in source) {
    const info = await stat(source.checkpoint);
    hash.update(JSON.stringify({ path: resolve(source.checkpoint), size: info.size, mtime: info.mtimeMs, config: source.config }));
  } else {
    hash.update(JSON.stringify(source.unet.config));
    for (const [name, tensor] of source.unet.weightTensors()) {
      const dense = tensor.contiguous();
      hash.update(`${name}:${dense.dtype}:${dense.shape.join(',')};`);
      hash.update(new Uint8Array(dense.data.buffer, dense.data.byteOffset + dense.offset * dense.data.BYTES_PER_ELEMENT, dense.size * dense.data.BYTES_PER_ELEMENT));
    }
  }
  return hash.digest('hex');
}

/** The model facts of a complete cache entry, or undefined when there is none (or it is unreadable). */
async function readCacheEntry(entry: string): Promise<ExtractionModelInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(join(entry, 'info.json'), 'utf8')) as ExtractionModelInfo;
    await stat(join(entry, 'model.onnx'));
    return info;
  } catch {
    return undefined;
  }
}

/**
 * Creates a feature extractor in Node. With `cacheDirectory`, the compiled
 * ONNX model is stored there (keyed by the checkpoint file's path, size and
 * modification time and the flags, or by an in-memory U-Net's weight bytes,
 * plus blocks and precision) and reused on the next start without loading the
 * checkpoint or rebuilding the graph. Cache entries are written to a temporary
 * folder and renamed, so a crash never leaves a half-written entry.
 *
 * @example
 * ```ts
 * const extractor = await createFeatureExtractor({ checkpoint: 'adm.pt', config: flags, blocks: [5, 10], timesteps: [150] });
 * const features = await extractor.extract(images); // features.get('t150/block10')
 * ```
 * @throws `ConfigError` for blocks outside 1..N or timesteps outside [0, steps); `CheckpointMismatchError` when the flags do not fit the weights
 * @public
 */
export async function createFeatureExtractor(options: FeatureExtractorOptions): Promise<FeatureExtractor> {
  const dtype = options.dtype ?? 'float32';
  let unet = 'unet' in options ? options.unet : undefined;
  const loadUNet = async () => (unet ??= new AdmUNet((options as { config: GuidedDiffusionFlags }).config, await loadCheckpoint((options as { checkpoint: string }).checkpoint)));
  let cacheEntry: string | undefined;
  if (options.cacheDirectory) {
    const key = await sourceFingerprint(options);
    const name = createHash('sha256').update(JSON.stringify({ key, blocks: [...options.blocks].sort((a, b) => a - b), dtype, version: CACHE_VERSION })).digest('hex').slice(0, 24);
    cacheEntry = join(options.cacheDirectory, `unet-${name}`);
    const cached = await readCacheEntry(cacheEntry);
    if (cached) return openFeatureExtractor(createRunner, join(cacheEntry, 'model.onnx'), cached, options, true);
  }
  const built = await loadUNet();
  const info = extractionInfo(built);
  const model = buildExtractionModel(built, checkExtraction(info, options), options.blocks, dtype);
  let source: Uint8Array | string;
  if (cacheEntry) {
    const temporary = `${cacheEntry}.tmp-${process.pid}-${Date.now()}`;
    await mkdir(temporary, { recursive: true });
    await saveModel(model, join(temporary, 'model.onnx'));
    await writeFile(join(temporary, 'info.json'), JSON.stringify(info));
    await rm(cacheEntry, { recursive: true, force: true });
    await rename(temporary, cacheEntry);
    source = join(cacheEntry, 'model.onnx');
  } else if (model.initializerBytes > 1_500_000_000) {
    // Above protobuf's comfort zone: write with external data and load from disk.
    const directory = await mkdtemp(join(tmpdir(), 'diffssl-unet-'));
    await saveModel(model, join(directory, 'model.onnx'));
    source = join(directory, 'model.onnx');
  } else {
    source = model.serialize().model;
  }
  return openFeatureExtractor(createRunner, source, info, options, false);
}
