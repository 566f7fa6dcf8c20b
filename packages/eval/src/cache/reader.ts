import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { ConfigError, FormatError, HostTensor, shapeSize, UnsupportedError } from '@diffssl/core';
import { INDEX_FILE, LABELS_FILE, parseIndex, type CacheShardEntry, type FeatureCacheIndex } from './format.js';
import { canonicalJson, canonicalKey, keyDigest, type FeatureCacheKey } from './key.js';

const BYTES = Float32Array.BYTES_PER_ELEMENT;

/**
 * A feature cache on disk, opened for reading. Reads are positional
 * (`FileHandle.read` at an offset) straight into the returned tensors' memory,
 * so a batch costs its own size and nothing else is loaded.
 *
 * @example
 * ```ts
 * const cache = await findFeatureCache(root, key);
 * if (cache) {
 *   const batch = await cache.readBatch([4, 17, 3], 0); // batch.get('t150/block24'): [3, C, h, w]
 *   await cache.close();
 * }
 * ```
 * @public
 */
export class FeatureCache {
  private readonly handles = new Map<string, Promise<FileHandle>>();
  private closed = false;

  /** @internal */
  constructor(
    /** The cache directory. */
    readonly directory: string,
    /** Its parsed `index.json`. */
    readonly index: FeatureCacheIndex,
    /** The labels of `imageRange`, when the cache has them. */
    readonly labels: Int32Array | undefined,
  ) {}

  /** Images in the whole data set. */
  get imageCount(): number {
    return this.index.imageCount;
  }

  /** Image indices [start, end) this cache holds (all of them unless it is a shard). */
  get imageRange(): [number, number] {
    return [...this.index.imageRange];
  }

  /** Noise draws per image. */
  get draws(): number {
    return this.index.draws;
  }

  /** The tensor names, `t{T}/block{NN}`. */
  get tensorNames(): string[] {
    return this.index.tensors.map((t) => t.name);
  }

  /** The class names stored with the cache, if any. */
  get classNames(): string[] | undefined {
    return this.index.classNames ?? undefined;
  }

  /**
   * The shape of one image's feature.
   *
   * @throws {@link @diffssl/core!ConfigError} for an unknown name
   */
  tensorShape(name: string): number[] {
    const entry = this.index.tensors.find((t) => t.name === name);
    if (!entry) throw new ConfigError(`feature cache: no tensor '${name}'; it has ${this.tensorNames.join(', ')}`);
    return [...entry.shape];
  }

  private handle(shard: CacheShardEntry, file: string): Promise<FileHandle> {
    const path = join(this.directory, shard.path, file);
    let handle = this.handles.get(path);
    if (!handle) {
      handle = open(path, 'r');
      this.handles.set(path, handle);
    }
    return handle;
  }

  private shardOf(image: number): CacheShardEntry {
    const shards = this.index.shards;
    let low = 0;
    let high = shards.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (shards[middle]!.imageRange[0] <= image) low = middle;
      else high = middle - 1;
    }
    return shards[low]!;
  }

  /**
   * Reads the features of some images for one noise draw. Runs of consecutive
   * indices in one shard are read with one call when the cache has one draw.
   *
   * @param indices - image indices (within {@link FeatureCache.imageRange}), in the order wanted; repeats allowed
   * @param draw - the noise draw, from 0 (default 0)
   * @param names - the tensors to read (default all)
   * @returns one float32 tensor [indices.length, ...shape] per name
   * @throws {@link @diffssl/core!ConfigError} for an index outside the range, a bad draw or an unknown name; {@link @diffssl/core!FormatError} when a file is shorter than its index says
   */
  async readBatch(indices: readonly number[], draw = 0, names: readonly string[] = this.tensorNames): Promise<Map<string, HostTensor<'float32'>>> {
    if (this.closed) throw new ConfigError('feature cache: readBatch after close');
    const [start, end] = this.index.imageRange;
    for (const index of indices) {
      if (!Number.isSafeInteger(index) || index < start || index >= end)
        throw new ConfigError(`feature cache: image index ${index} is outside ${start}..${end - 1}`);
    }
    if (!Number.isSafeInteger(draw) || draw < 0 || draw >= this.draws) throw new ConfigError(`feature cache: draw ${draw} is outside 0..${this.draws - 1}`);
    const draws = this.draws;
    // Group indices into runs that one read can serve.
    const runs: Array<{ shard: CacheShardEntry; first: number; outputRow: number; length: number }> = [];
    for (let row = 0; row < indices.length; row++) {
      const image = indices[row]!;
      const last = runs[runs.length - 1];
      if (last && draws === 1 && image === last.first + last.length && image < last.shard.imageRange[1]) last.length++;
      else runs.push({ shard: this.shardOf(image), first: image, outputRow: row, length: 1 });
    }
    const out = new Map<string, HostTensor<'float32'>>();
    await Promise.all(
      names.map(async (name) => {
        const entry = this.index.tensors.find((t) => t.name === name);
        if (!entry) throw new ConfigError(`feature cache: no tensor '${name}'; it has ${this.tensorNames.join(', ')}`);
        const elements = shapeSize(entry.shape);
        const data = new Float32Array(indices.length * elements);
        await Promise.all(
          runs.map(async (run) => {
            const handle = await this.handle(run.shard, entry.file);
            const position = ((run.first - run.shard.imageRange[0]) * draws + draw) * elements * BYTES;
            const length = run.length * elements * BYTES;
            const { bytesRead } = await handle.read(new Uint8Array(data.buffer, run.outputRow * elements * BYTES, length), 0, length, position);
            if (bytesRead !== length)
              throw new FormatError(
                `feature cache: ${join(this.directory, run.shard.path, entry.file)} ends early: expected ${length} bytes at ${position}; read ${bytesRead}`,
              );
          }),
        );
        out.set(name, HostTensor.from('float32', [indices.length, ...entry.shape], data));
      }),
    );
    return out;
  }

  /** Closes the open files. */
  async close(): Promise<void> {
    this.closed = true;
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map(async (handle) => (await handle).close()));
  }
}

/**
 * Opens a cache directory after checking it completely: the index, the
 * expected key (when given) and the size of every file. A directory that
 * fails any check is never read.
 *
 * @param directory - the cache (or shard) directory
 * @param expectedKey - when given, the cache must have been written for exactly this key
 * @returns the opened cache
 * @throws {@link @diffssl/core!FormatError} for a missing, unreadable or inconsistent cache, or a key mismatch; {@link @diffssl/core!UnsupportedError} on a big-endian machine
 * @public
 */
export async function openFeatureCache(directory: string, expectedKey?: FeatureCacheKey): Promise<FeatureCache> {
  if (endianness() !== 'LE') throw new UnsupportedError('feature cache: the float32 files are little-endian; this machine is big-endian');
  const indexPath = join(directory, INDEX_FILE);
  let text: string;
  try {
    text = await readFile(indexPath, 'utf8');
  } catch (cause) {
    throw new FormatError(`feature cache: cannot read ${indexPath}: ${(cause as Error).message}`, { cause });
  }
  const index = parseIndex(text, indexPath);
  let digest: string;
  try {
    digest = keyDigest(index.key);
  } catch (cause) {
    // Keys written before a field was added (noiseSplit) fail the check: features of another noise, never to be reused.
    throw new FormatError(`feature cache: ${indexPath}: its key is not a valid key of this version (${(cause as Error).message}); extract the features again`, {
      cause,
    });
  }
  if (digest !== index.keyDigest) throw new FormatError(`feature cache: ${indexPath}: keyDigest does not match its key`);
  if (expectedKey) {
    const expected = canonicalKey(expectedKey);
    if (canonicalJson(expected) !== canonicalJson(index.key)) {
      const differing = (Object.keys(expected) as Array<keyof typeof expected>).filter(
        (field) => canonicalJson(expected[field]) !== canonicalJson(index.key[field]),
      );
      throw new FormatError(`feature cache: ${directory} was written for another key (${differing.join(', ')} differ)`);
    }
  }
  for (const shard of index.shards) {
    const images = shard.imageRange[1] - shard.imageRange[0];
    for (const tensor of index.tensors) {
      const path = join(directory, shard.path, tensor.file);
      const expected = images * index.draws * shapeSize(tensor.shape) * BYTES;
      const size = await stat(path).then(
        (s) => s.size,
        () => -1,
      );
      if (size !== expected) throw new FormatError(`feature cache: ${path}: expected ${expected} bytes; found ${size < 0 ? 'no file' : `${size} bytes`}`);
    }
  }
  let labels: Int32Array | undefined;
  if (index.labels) {
    const path = join(directory, LABELS_FILE);
    const bytes = await readFile(path).catch(() => undefined);
    const count = index.imageRange[1] - index.imageRange[0];
    if (!bytes || bytes.length !== count * 4)
      throw new FormatError(`feature cache: ${path}: expected ${count * 4} bytes; found ${bytes ? bytes.length : 'no file'}`);
    labels = new Int32Array(count);
    new Uint8Array(labels.buffer).set(bytes);
  }
  return new FeatureCache(directory, index, labels);
}
