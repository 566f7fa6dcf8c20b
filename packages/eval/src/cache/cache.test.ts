import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigError, DTypeError, FormatError, HostTensor, NonFiniteError } from '@diffssl/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkpointDigest,
  dataIdentity,
  drawSeed,
  featureBatchesForDraws,
  featureCachePath,
  featureNames,
  findFeatureCache,
  mergeShards,
  openFeatureCache,
  parseShard,
  shardRange,
  writeFeatureCache,
  type CacheFeatureBatch,
  type FeatureCacheKey,
} from './index.js';
import {
  SYNTHETIC_CLASSES,
  SYNTHETIC_IMAGES,
  SYNTHETIC_KEY,
  syntheticBatches,
  syntheticLabels,
  syntheticShape,
  syntheticValue,
} from './__fixtures__/synthetic-features.js';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, '..', '..');
const names = featureNames(SYNTHETIC_KEY);
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'diffssl-cache-test-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function freshRoot(): Promise<string> {
  return mkdtemp(join(scratch, 'root-'));
}

async function writeSynthetic(root: string, batchSize = 7, key: FeatureCacheKey = SYNTHETIC_KEY) {
  return writeFeatureCache({
    root,
    key,
    imageCount: SYNTHETIC_IMAGES,
    labels: syntheticLabels(),
    classNames: SYNTHETIC_CLASSES,
    batches: syntheticBatches(names, 0, SYNTHETIC_IMAGES, key.draws, batchSize),
  });
}

/** Every file under a directory: relative path -> bytes. */
async function tree(directory: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      out.set(relative(directory, path), await readFile(path));
    }
  }
  return out;
}

function expectSyntheticRows(batch: Map<string, HostTensor<'float32'>>, indices: number[], draw: number): void {
  for (const name of names) {
    const tensor = batch.get(name)!;
    const shape = syntheticShape(name);
    const elements = shape.reduce((a, b) => a * b, 1);
    expect(tensor.shape).toEqual([indices.length, ...shape]);
    const expected = new Float32Array(indices.length * elements);
    indices.forEach((image, row) => {
      for (let e = 0; e < elements; e++) expected[row * elements + e] = syntheticValue(name, image, draw, e);
    });
    expect(tensor.data).toEqual(expected);
  }
}

describe('feature cache: write and read', () => {
  it('reads back every (image, draw) row exactly, in the order asked, with repeats', async () => {
    const cache = await writeSynthetic(await freshRoot());
    expect(cache.tensorNames).toEqual(['t10/block02', 't10/block05', 't50/block02', 't50/block05']);
    expect(cache.tensorShape('t10/block02')).toEqual([3, 4, 4]);
    expect(cache.draws).toBe(2);
    expect(cache.imageRange).toEqual([0, SYNTHETIC_IMAGES]);
    expect([...cache.labels!]).toEqual(syntheticLabels());
    expect(cache.classNames).toEqual(SYNTHETIC_CLASSES);
    for (const draw of [0, 1]) {
      const all = Array.from({ length: SYNTHETIC_IMAGES }, (_, i) => i);
      expectSyntheticRows(await cache.readBatch(all, draw), all, draw);
      const scattered = [36, 0, 5, 6, 7, 5, 20];
      expectSyntheticRows(await cache.readBatch(scattered, draw), scattered, draw);
    }
    const only = await cache.readBatch([3], 1, ['t50/block05']);
    expect([...only.keys()]).toEqual(['t50/block05']);
    await expect(cache.readBatch([37])).rejects.toThrow(ConfigError);
    await expect(cache.readBatch([0], 2)).rejects.toThrow(/draw 2 is outside 0\.\.1/);
    await expect(cache.readBatch([0], 0, ['t99/block01'])).rejects.toThrow(/no tensor 't99\/block01'/);
    await cache.close();
  });

  it('lays each tensor file out as documented: little-endian float32 rows [image][draw][element]', async () => {
    const cache = await writeSynthetic(await freshRoot());
    const index = JSON.parse(await readFile(join(cache.directory, 'index.json'), 'utf8')) as Record<string, unknown>;
    expect(index).toMatchObject({
      format: 'diffssl-feature-cache',
      version: 1,
      dtype: 'float32',
      byteOrder: 'little',
      layout: 'image,draw,element',
      imageCount: 37,
      draws: 2,
      labels: 'labels.i32',
    });
    expect(index.tensors).toContainEqual({ name: 't10/block05', shape: [2, 2, 2], file: 't10/block05.f32' });
    const bytes = await readFile(join(cache.directory, 'data', 't10/block05.f32'));
    expect(bytes.length).toBe(37 * 2 * 8 * 4);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (const [image, draw, element] of [
      [0, 0, 0],
      [0, 1, 0],
      [1, 0, 7],
      [36, 1, 5],
      [17, 0, 3],
    ] as const) {
      expect(view.getFloat32(((image * 2 + draw) * 8 + element) * 4, true)).toBe(syntheticValue('t10/block05', image, draw, element));
    }
    const labels = await readFile(join(cache.directory, 'labels.i32'));
    expect(new DataView(labels.buffer, labels.byteOffset).getInt32(4 * 4, true)).toBe(syntheticLabels()[4]);
    await cache.close();
  });

  it('is found again for an equal key (order of blocks and timesteps aside) and for no other key', async () => {
    const root = await freshRoot();
    await (await writeSynthetic(root)).close();
    const reordered = { ...SYNTHETIC_KEY, blocks: [2, 5, 2], timesteps: [10, 50], config: { num_channels: 32, image_size: 28 } };
    const found = await findFeatureCache(root, reordered);
    expect(found?.directory).toBe(featureCachePath(root, SYNTHETIC_KEY));
    await found?.close();
    const variants: Array<Partial<FeatureCacheKey>> = [
      { checkpoint: 'sha256:2' },
      { config: { image_size: 28, num_channels: 64 } },
      { blocks: [2] },
      { timesteps: [10, 150] },
      { noiseSeed: 8 },
      { noiseSplit: 'test' },
      { draws: 1 },
      { data: 'sha256:other' },
      { extra: { dtype: 'float16' } },
    ];
    for (const variant of variants) expect(await findFeatureCache(root, { ...SYNTHETIC_KEY, ...variant }), JSON.stringify(variant)).toBeUndefined();
  });

  it('refuses to open an entry whose index was written for another key or whose file is short, and rewrites it', async () => {
    const root = await freshRoot();
    const cache = await writeSynthetic(root);
    await cache.close();
    await expect(openFeatureCache(cache.directory, { ...SYNTHETIC_KEY, noiseSeed: 1 })).rejects.toThrow(/another key \(noiseSeed differ\)/);
    await truncate(join(cache.directory, 'data', 't50/block02.f32'), 100);
    await expect(openFeatureCache(cache.directory)).rejects.toThrow(FormatError);
    expect(await findFeatureCache(root, SYNTHETIC_KEY)).toBeUndefined();
    const rewritten = await writeSynthetic(root);
    expect(rewritten.directory).toBe(cache.directory);
    expectSyntheticRows(await rewritten.readBatch([1, 2], 1), [1, 2], 1);
    await rewritten.close();
    expect((await readdir(root)).filter((name) => name.startsWith('.'))).toEqual([]);
  });

  it('never reuses an entry written before keys named their noise split: another folder, and refused when opened by path', async () => {
    const root = await freshRoot();
    const cache = await writeSynthetic(root);
    await cache.close();
    // The index as the earlier version wrote it: the key without noiseSplit, its digest over that key.
    const indexPath = join(cache.directory, 'index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { key: Record<string, unknown>; keyDigest: string };
    delete index.key.noiseSplit;
    const oldKey = JSON.stringify(Object.fromEntries(Object.entries(index.key).sort(([a], [b]) => (a < b ? -1 : 1))));
    index.keyDigest = createHash('sha256').update(oldKey).digest('hex');
    await writeFile(indexPath, JSON.stringify(index));
    await expect(openFeatureCache(cache.directory)).rejects.toThrow(
      /not a valid key of this version \(feature cache key: noiseSplit must be 'train' or 'test'/,
    );
    await expect(openFeatureCache(cache.directory)).rejects.toThrow(FormatError);
    // Its folder is named by the old digest, which no key of this version has.
    const oldFolder = `features-${index.keyDigest.slice(0, 32)}`;
    for (const noiseSplit of ['train', 'test'] as const) expect(featureCachePath(root, { ...SYNTHETIC_KEY, noiseSplit })).not.toBe(join(root, oldFolder));
  });

  it('publishes nothing, and leaves no temporary folder, when a row is missing, repeated or the stream fails', async () => {
    const root = await freshRoot();
    const batches = syntheticBatches(names, 0, SYNTHETIC_IMAGES, 2, 7);
    const failing: Array<[string, Iterable<CacheFeatureBatch> | AsyncIterable<CacheFeatureBatch>, RegExp]> = [
      ['missing', batches.slice(0, -1), /covered .* rows; image \d+, draw \d is missing/],
      ['repeated', [...batches, batches[0]!], /came twice/],
      [
        'failing stream',
        (async function* () {
          yield batches[0]!;
          throw new Error('extractor crashed');
        })(),
        /extractor crashed/,
      ],
      ['outside', [{ imageIds: [37], features: batches[0]!.features }], /image id 37 is outside/],
    ];
    for (const [what, stream, message] of failing) {
      await expect(writeFeatureCache({ root, key: SYNTHETIC_KEY, imageCount: 37, batches: stream }), what).rejects.toThrow(message);
      expect(await readdir(root), what).toEqual([]);
    }
  });

  it('rejects features of another dtype, shape or name, NaN features and labels outside the classes', async () => {
    const root = await freshRoot();
    const [batch] = syntheticBatches(names, 0, 37, 1, 3);
    const key = { ...SYNTHETIC_KEY, draws: 1 };
    const replace = (name: string, tensor: HostTensor) => [{ ...batch!, features: new Map([...batch!.features, [name, tensor]]) }];
    const good = batch!.features.get('t10/block05')!;
    await expect(writeFeatureCache({ root, key, imageCount: 37, batches: replace('t10/block05', good.cast('float64')) })).rejects.toThrow(DTypeError);
    const [first, second] = syntheticBatches(names, 0, 37, 1, 3);
    const reshaped = { ...second!, features: new Map([...second!.features, ['t10/block05', second!.features.get('t10/block05')!.reshape([3, 8])]]) };
    await expect(writeFeatureCache({ root, key, imageCount: 37, batches: [first!, reshaped] })).rejects.toThrow(/expected \[3, 2, 2, 2\]; found \[3, 8\]/);
    const nan = good.contiguous().cast('float32');
    nan.data[9] = Number.NaN;
    await expect(writeFeatureCache({ root, key, imageCount: 37, batches: replace('t10/block05', nan) })).rejects.toThrow(NonFiniteError);
    await expect(writeFeatureCache({ root, key, imageCount: 37, batches: replace('t10/block07', good) })).rejects.toThrow(/expected features t10\/block02/);
    const labels = syntheticLabels();
    labels[3] = 3;
    await expect(writeFeatureCache({ root, key, imageCount: 37, labels, classNames: SYNTHETIC_CLASSES, batches: [] })).rejects.toThrow(
      /label 3 of image 3 is outside the classes 0\.\.2/,
    );
    expect(await readdir(root)).toEqual([]);
  });
});

describe('feature cache: crash safety', () => {
  it('leaves no entry under the final name when the writing process is killed mid-write', async () => {
    const root = await freshRoot();
    const child = spawn(process.execPath, ['--conditions=@diffssl/source', '--import', 'tsx', join(here, '__fixtures__', 'write-shard.ts'), root, '0/1', '5'], {
      cwd: packageRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('stalled') && resolve());
      child.on('exit', (code) => reject(new Error(`the writer exited (${code}) before stalling`)));
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const left = await readdir(root);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.tmp-features-[0-9a-f]{32}\.shard-0-of-1-/);
    expect((await tree(join(root, left[0]!))).size).toBeGreaterThan(0);
    expect(await findFeatureCache(root, SYNTHETIC_KEY)).toBeUndefined();
    const cache = await writeSynthetic(root);
    expectSyntheticRows(await cache.readBatch([0, 36], 1), [0, 36], 1);
    await cache.close();
  }, 60_000);
});

describe('feature cache: shards', () => {
  it('splits images into contiguous slices that cover every image once', () => {
    for (const [count, images] of [
      [1, 5],
      [4, 37],
      [3, 3],
      [7, 100],
    ] as const) {
      const ranges = Array.from({ length: count }, (_, k) => shardRange(k, count, images));
      expect(ranges[0]![0]).toBe(0);
      expect(ranges[count - 1]![1]).toBe(images);
      for (let k = 1; k < count; k++) expect(ranges[k]![0]).toBe(ranges[k - 1]![1]);
    }
    expect(shardRange(1, 4, 37)).toEqual([9, 18]);
    expect(parseShard('3/4')).toEqual({ index: 3, count: 4 });
    for (const bad of ['4/4', '1', '-1/4', 'a/b', '1/0']) expect(() => parseShard(bad), bad).toThrow(ConfigError);
  });

  it('merges 4 shards written by 4 separate processes into a cache byte-identical to a single-process write', async () => {
    const single = await writeSynthetic(await freshRoot(), 7);
    await single.close();
    const root = await freshRoot();
    const run = promisify(execFile);
    const worker = join(here, '__fixtures__', 'write-shard.ts');
    const outputs = await Promise.all(
      [0, 1, 2, 3].map((k) => run(process.execPath, ['--conditions=@diffssl/source', '--import', 'tsx', worker, root, `${k}/4`], { cwd: packageRoot })),
    );
    const shardDirectories = outputs.map((output) => output.stdout.trim());
    expect(shardDirectories).toEqual([0, 1, 2, 3].map((k) => featureCachePath(root, SYNTHETIC_KEY, { index: k, count: 4 })));
    const merged = await mergeShards([...shardDirectories].reverse());
    expect(merged.directory).toBe(featureCachePath(root, SYNTHETIC_KEY));
    await merged.close();
    const expected = await tree(single.directory);
    const actual = await tree(merged.directory);
    expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [path, bytes] of expected) expect(actual.get(path)!.equals(bytes), path).toBe(true);

    const linked = await mergeShards(shardDirectories, { mode: 'link', root: join(root, 'linked') });
    expect(linked.index.shards.map((s) => s.imageRange)).toEqual([
      [0, 9],
      [9, 18],
      [18, 27],
      [27, 37],
    ]);
    const all = Array.from({ length: 37 }, (_, i) => i);
    for (const draw of [0, 1]) expectSyntheticRows(await linked.readBatch(all, draw), all, draw);
    expectSyntheticRows(await linked.readBatch([8, 9, 10, 36], 1), [8, 9, 10, 36], 1);
    expect([...linked.labels!]).toEqual(syntheticLabels());
    await linked.close();
  }, 120_000);

  it('refuses to merge when a shard is missing, overlaps or belongs to another extraction', async () => {
    const root = await freshRoot();
    const write = (k: number, n: number, key = SYNTHETIC_KEY) => {
      const [start, end] = shardRange(k, n, 37);
      return writeFeatureCache({ root, key, imageCount: 37, shard: { index: k, count: n }, batches: syntheticBatches(names, start, end, key.draws, 5) });
    };
    const shards = [await write(0, 2), await write(1, 2), await write(0, 3), await write(1, 2, { ...SYNTHETIC_KEY, noiseSeed: 99 })];
    await Promise.all(shards.map((s) => s.close()));
    const [a, b, c, other] = shards.map((s) => s.directory) as [string, string, string, string];
    await expect(mergeShards([a])).rejects.toThrow(/no shard holds images 18\.\.36 of 37/);
    await expect(mergeShards([a, b, c])).rejects.toThrow(/differ in key|overlaps/);
    await expect(mergeShards([a, other])).rejects.toThrow(/differ in key; they are not shards of one extraction/);
    const merged = await mergeShards([b, a], { removeShards: true });
    expectSyntheticRows(await merged.readBatch([17, 18], 1), [17, 18], 1);
    await merged.close();
    expect((await readdir(root)).sort()).toEqual([c, other, merged.directory].map((p) => relative(root, p)).sort());
  });
});

describe('feature cache: key parts and the extractor adapter', () => {
  it('hashes checkpoints by content (SHA-256 test vector)', async () => {
    const path = join(scratch, 'abc.pt');
    await writeFile(path, 'abc');
    expect(await checkpointDigest(path)).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('gives data identities that change with any pixel, label or file and not otherwise', () => {
    const images = HostTensor.from('uint8', [2, 1, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
    const base = dataIdentity({ images, labels: [0, 1] });
    expect(dataIdentity({ images: HostTensor.from('uint8', [2, 1, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]), labels: [0, 1] })).toBe(base);
    expect(dataIdentity({ images: HostTensor.from('uint8', [2, 1, 2, 2], [1, 2, 3, 4, 5, 6, 7, 9]), labels: [0, 1] })).not.toBe(base);
    expect(dataIdentity({ images, labels: [1, 1] })).not.toBe(base);
    expect(dataIdentity({ images: images.reshape([2, 4, 1, 1]), labels: [0, 1] })).not.toBe(base);
    const files = [
      { path: 'a.png', size: 10 },
      { path: 'b.png', size: 12 },
    ];
    expect(dataIdentity({ files })).toBe(dataIdentity({ files: [...files].reverse() }));
    expect(dataIdentity({ files })).not.toBe(dataIdentity({ files: [files[0]!, { path: 'b.png', size: 13 }] }));
    expect(dataIdentity({ files, selection: { limit: 10 } })).not.toBe(dataIdentity({ files, selection: { limit: 11 } }));
    expect(() => dataIdentity({})).toThrow(ConfigError);
    expect(base).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('runs one stream per draw with draw 0 on the key seed and distinct seeds after', async () => {
    const seeds: number[] = [];
    const batches: CacheFeatureBatch[] = [];
    for await (const batch of featureBatchesForDraws({ draws: 3, noiseSeed: 5 }, function* (draw, seed) {
      seeds.push(seed);
      yield { imageIds: [draw], features: new Map() };
    }))
      batches.push(batch);
    expect(batches.map((b) => [b.draw, b.imageIds[0]])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
    ]);
    expect(seeds[0]).toBe(5);
    expect(seeds).toEqual([5, drawSeed(5, 1), drawSeed(5, 2)]);
    expect(new Set(seeds).size).toBe(3);
    for (const seed of seeds) expect(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32).toBe(true);
  });

  it('names entries by the key digest, and shard folders after the entry', () => {
    const path = featureCachePath('/cache', SYNTHETIC_KEY);
    expect(path).toMatch(/^\/cache\/features-[0-9a-f]{32}$/);
    expect(featureCachePath('/cache', SYNTHETIC_KEY, { index: 2, count: 4 })).toBe(`${path}.shard-2-of-4`);
  });
});
