/**
 * `pnpm bench` in @diffssl/eval. Prints, from one run on this machine, the
 * wall time of the quick probes at the sizes of issue 8:
 * 1. ridge (closed form) on 10,000 x 1,024 features, 10 classes: XᵀX on ONNX
 *    Runtime (float64 MatMul) and in plain TypeScript, plus the Cholesky solve;
 * 2. kNN (cosine, k = 20) of 10,000 queries against 10,000 training rows of
 *    256 features: similarities on ONNX Runtime (float32 MatMul), and a
 *    TypeScript estimate from 500 queries;
 * 3. feature cache: write and read throughput of 10,000 x [256, 7, 7] features;
 * 4. a 28-epoch frozen run end to end with the feature cache against the same
 *    run recomputing the U-Net features every epoch (--no-cache), on the
 *    embedded U-Net and 2,000 + 1,000 FM-10k images: GD(L) at block 10, t=50,
 *    and the attention head at the same cell.
 * Figures are indicative: the machine is shared; compare ratios, not seconds.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostTensor } from '@diffssl/core';
import { EMBEDDED_DATA, EMBEDDED_MODEL } from '@diffssl/testing';
import {
  FASHION_MNIST_CLASSES,
  featureNames,
  knnClassify,
  RidgeAccumulator,
  runProtocol,
  writeFeatureCache,
  type CacheFeatureBatch,
  type FeatureCacheKey,
} from '../src/index.js';

function clusteredFeatures(rows: number, columns: number, classes: number, seed: number): { features: HostTensor<'float32'>; labels: Int32Array } {
  let state = seed >>> 0;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const centers = Array.from({ length: classes }, () => Float32Array.from({ length: columns }, random));
  const labels = new Int32Array(rows);
  const data = new Float32Array(rows * columns);
  for (let i = 0; i < rows; i++) {
    labels[i] = i % classes;
    for (let d = 0; d < columns; d++) data[i * columns + d] = centers[labels[i]!]![d]! + 2 * random();
  }
  return { features: HostTensor.from('float32', [rows, columns], data), labels };
}

async function seconds<T>(run: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const result = await run();
  return [(performance.now() - start) / 1000, result];
}

async function benchRidge(): Promise<void> {
  const { features, labels } = clusteredFeatures(10_000, 1024, 10, 1);
  for (const backend of ['onnx', 'typescript'] as const) {
    const ridge = new RidgeAccumulator(1024, { classCount: 10, backend });
    const [accumulate] = await seconds(() => ridge.add(features, labels));
    const [solve] = await seconds(() => ridge.fit());
    console.log(
      `ridge 10,000 x 1,024, ${backend}: XᵀX ${accumulate.toFixed(2)} s, Cholesky solve ${solve.toFixed(2)} s, total ${(accumulate + solve).toFixed(2)} s`,
    );
  }
}

async function benchKnn(): Promise<void> {
  const train = clusteredFeatures(10_000, 256, 10, 2);
  const test = clusteredFeatures(10_000, 256, 10, 3);
  const [onnx] = await seconds(() => knnClassify(train.features, train.labels, test.features, { k: 20, classCount: 10 }));
  console.log(`kNN 10,000 x 10,000 x 256, k=20, onnx: ${onnx.toFixed(2)} s`);
  const few = test.features.slice([0], [500]);
  const [typescript] = await seconds(() => knnClassify(train.features, train.labels, few, { k: 20, classCount: 10, backend: 'typescript' }));
  console.log(`kNN 500 x 10,000 x 256, k=20, typescript: ${typescript.toFixed(2)} s (about ${(typescript * 20).toFixed(0)} s for 10,000 queries)`);
}

async function benchCache(): Promise<void> {
  const key: FeatureCacheKey = {
    checkpoint: 'sha256:bench',
    config: 'bench',
    blocks: [24],
    timesteps: [150],
    noiseSeed: 0,
    noiseSplit: 'train',
    draws: 1,
    data: 'sha256:bench',
  };
  const [name] = featureNames(key) as [string];
  const images = 10_000;
  const batch = 256;
  const shape = [256, 7, 7];
  const elements = 256 * 49;
  const data = new Float32Array(batch * elements).map((_, i) => (i % 97) / 97);
  async function* batches(): AsyncGenerator<CacheFeatureBatch> {
    for (let start = 0; start < images; start += batch) {
      const ids = Array.from({ length: Math.min(batch, images - start) }, (_, i) => start + i);
      yield { imageIds: ids, features: new Map([[name, HostTensor.from('float32', [ids.length, ...shape], data.subarray(0, ids.length * elements))]]) };
    }
  }
  const root = await mkdtemp(join(tmpdir(), 'diffssl-cache-bench-'));
  try {
    const [write, cache] = await seconds(() => writeFeatureCache({ root, key, imageCount: images, batches: batches() }));
    const megabytes = (images * elements * 4) / 2 ** 20;
    const order = Array.from({ length: images }, (_, i) => (i * 7919) % images);
    const [read] = await seconds(async () => {
      for (let start = 0; start < images; start += 32) await cache.readBatch(order.slice(start, start + 32));
    });
    await cache.close();
    console.log(
      `feature cache ${megabytes.toFixed(0)} MiB: write ${(megabytes / write).toFixed(0)} MiB/s, shuffled reads in batches of 32 ${(megabytes / read).toFixed(0)} MiB/s (${(images / read).toFixed(0)} images/s)`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function benchCacheSpeedup(protocol: 'linear' | 'attention'): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'diffssl-bench-speedup-'));
  const run = async (cache: boolean) => {
    const started = performance.now();
    const report = await runProtocol({
      protocol,
      checkpoint: EMBEDDED_MODEL.checkpoint,
      config: EMBEDDED_MODEL.flagsFile,
      data: EMBEDDED_DATA,
      classNames: FASHION_MNIST_CLASSES,
      trainLimit: 2000,
      testLimit: 1000,
      blocks: [10],
      timesteps: [50],
      epochs: 28,
      out: join(work, cache ? 'cached' : 'recomputed'),
      cache,
      cacheDirectory: join(work, 'cache'),
      progress: 'off',
      runner: { executionProviders: ['cpu'] },
    });
    return { seconds: (performance.now() - started) / 1000, top1: report.top1 };
  };
  const cached = await run(true);
  const recomputed = await run(false);
  console.log(
    `28 epochs of ${protocol} (block 10, t=50, 2,000 train + 1,000 test images), end to end: with the feature cache ${cached.seconds.toFixed(1)} s (top-1 ${cached.top1.toFixed(2)}%), ` +
      `recomputing the features every epoch ${recomputed.seconds.toFixed(1)} s (top-1 ${recomputed.top1.toFixed(2)}%): ${(recomputed.seconds / cached.seconds).toFixed(1)}x faster with the cache`,
  );
  await rm(work, { recursive: true, force: true });
}

await benchRidge();
await benchKnn();
await benchCache();
await benchCacheSpeedup('linear');
await benchCacheSpeedup('attention');
