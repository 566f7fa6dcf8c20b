/**
 * `pnpm bench` in @diffssl/unet, on the embedded adm-fm28 checkpoint (ORT CPU):
 * 1. throughput (images/s) extracting blocks {5, 10, 14} at t=150, batch 64,
 *    and achieved GFLOP/s as a fraction of ORT's matmul GFLOP/s in the same run;
 * 2. early exit: block 5 alone vs the full forward (ratio of times);
 * 3. peak RSS while streaming features of the 10,000 embedded Fashion-MNIST
 *    training images, discarding each batch;
 * 4. memory of loading a synthetic 1 GiB torch checkpoint: peak RSS growth as a
 *    multiple of the file size (one copy in memory is 1.0).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { compileModel, createRunner, Graph, HostTensor, matmul } from '@diffssl/core';
import { AdmUNet, createFeatureExtractor, readTorchCheckpoint, type GuidedDiffusionFlags } from '../src/index.js';
import { embeddedFlags, EMBEDDED_DATA, fixturePath, writeStateDict, type TensorRecord } from '@diffssl/testing';

const checkpoint = fixturePath('adm-fm28.pt');
const flags = embeddedFlags() as unknown as GuidedDiffusionFlags;
const cpu = { executionProviders: ['cpu'] as const };

async function seconds(run: () => Promise<unknown>, minimum: number): Promise<number> {
  await run();
  const start = performance.now();
  let runs = 0;
  while (runs < 2 || performance.now() - start < minimum * 1000) {
    await run();
    runs++;
  }
  return (performance.now() - start) / 1000 / runs;
}

async function matmulRate(): Promise<number> {
  const graph = new Graph();
  const a = graph.input('a', 'float32', [512, 512]);
  const b = graph.input('b', 'float32', [512, 512]);
  const runner = await createRunner(compileModel({ outputs: { c: matmul(a, b) } }), cpu);
  const feeds = { a: HostTensor.from('float32', [512, 512], new Float32Array(512 * 512).fill(0.5)), b: HostTensor.from('float32', [512, 512], new Float32Array(512 * 512).fill(0.25)) };
  const time = await seconds(() => runner.run(feeds), 2);
  await runner.release();
  return (2 * 512 ** 3) / time / 1e9;
}

/** Multiply-accumulate count of the convolutions and attention matmuls up to `last` block (x2 = FLOPs). */
function forwardFlops(unet: AdmUNet, last: number): number {
  let macs = 0;
  for (const block of unet.layout.blocks) {
    if (block.number > last) break;
    const r = block.resolution;
    for (const layer of block.layers) {
      if (layer.kind === 'conv') macs += layer.inChannels * layer.outChannels * 9 * r * r;
      if (layer.kind === 'resblock') {
        const inputResolution = layer.resample === 'down' ? 2 * r : layer.resample === 'up' ? r / 2 : r;
        macs += (layer.inChannels * layer.outChannels + layer.outChannels * layer.outChannels) * 9 * r * r;
        if (layer.inChannels !== layer.outChannels) macs += layer.inChannels * layer.outChannels * inputResolution * inputResolution;
      }
      if (layer.kind === 'attention') macs += 4 * layer.channels * layer.channels * r * r + 2 * layer.channels * (r * r) ** 2;
      if (layer.kind === 'downsample' || layer.kind === 'upsample') macs += layer.channels * layer.channels * 9 * r * r;
    }
  }
  return 2 * macs;
}

function syntheticImages(count: number): HostTensor<'uint8'> {
  const pixels = new Uint8Array(count * 28 * 28);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  return HostTensor.from('uint8', [count, 1, 28, 28], pixels);
}

/** The embedded FM-10k training images (assets/data/fashion-mnist-10k). */
function fashionMnist(count: number): { images: HostTensor<'uint8'>; source: string } {
  const bytes = gunzipSync(readFileSync(`${EMBEDDED_DATA}train-images-idx3-ubyte.gz`));
  return { images: HostTensor.from('uint8', [count, 1, 28, 28], new Uint8Array(bytes.buffer, bytes.byteOffset + 16, count * 784).slice()), source: 'Fashion-MNIST train images' };
}

const rate = await matmulRate();
console.log(`ORT matmul 512: ${rate.toFixed(1)} GFLOP/s`);

const unet = new AdmUNet(flags, await readTorchCheckpoint(checkpoint));
const batch = syntheticImages(64);
const throughputExtractor = await createFeatureExtractor({ unet, blocks: [5, 10, 14], timesteps: [150], batchSize: 64, runner: cpu });
const throughputTime = await seconds(() => throughputExtractor.extract(batch), 8);
await throughputExtractor.release();
const flops = forwardFlops(unet, 14) * 64;
console.log(`extract blocks {5,10,14} at t=150, batch 64: ${(64 / throughputTime).toFixed(1)} images/s, ${(flops / throughputTime / 1e9).toFixed(1)} GFLOP/s = ${(flops / throughputTime / 1e9 / rate).toFixed(2)} of the matmul rate`);

const early = await createFeatureExtractor({ unet, blocks: [5], timesteps: [150], batchSize: 64, runner: cpu });
const full = await createFeatureExtractor({ unet, blocks: [unet.blockCount], timesteps: [150], batchSize: 64, runner: cpu });
const earlyTime = await seconds(() => early.extract(batch), 5);
const fullTime = await seconds(() => full.extract(batch), 5);
await early.release();
await full.release();
console.log(`early exit: block 5 alone ${(earlyTime * 1000).toFixed(0)} ms vs full forward (block ${unet.blockCount}) ${(fullTime * 1000).toFixed(0)} ms per batch of 64 = ${((100 * earlyTime) / fullTime).toFixed(0)}%`);

const { images, source } = fashionMnist(10_000);
const streaming = await createFeatureExtractor({ unet, blocks: [5, 10, 14], timesteps: [150], batchSize: 64, runner: cpu });
let peak = process.memoryUsage().rss;
const start = performance.now();
let seen = 0;
for await (const part of streaming.stream(images, { ids: Array.from({ length: 10_000 }, (_, i) => i) })) {
  seen += part.imageIds.length;
  peak = Math.max(peak, process.memoryUsage().rss);
}
await streaming.release();
console.log(`streamed ${seen} ${source} (blocks {5,10,14}, t=150) in ${((performance.now() - start) / 1000).toFixed(0)} s; peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`);

{
  const directory = mkdtempSync(join(tmpdir(), 'diffssl-bench-'));
  const path = join(directory, 'large.pt');
  const tensors: Record<string, TensorRecord> = {};
  const elements = 4 * 2 ** 20;
  for (let i = 0; i < 64; i++) {
    const values = new Float32Array(elements).fill(i);
    tensors[`layer${i}.weight`] = { storageType: 'FloatStorage', bytes: new Uint8Array(values.buffer), numel: elements, offset: 0, shape: [2048, 2048], strides: [2048, 1] };
  }
  await writeStateDict(path, tensors);
  // Measure in a fresh process, so memory freed by the writer above does not hide the loader's allocations.
  const report = execFileSync(process.execPath, ['--conditions=@diffssl/source', '--import', 'tsx', fileURLToPath(new URL('./load-memory.ts', import.meta.url)), path], { encoding: 'utf8' });
  const { baseline, peak, seconds, tensors: count } = JSON.parse(report) as { baseline: number; peak: number; seconds: number; tensors: number };
  const fileBytes = 64 * elements * 4;
  console.log(`load synthetic torch checkpoint of ${(fileBytes / 2 ** 30).toFixed(2)} GiB (${count} tensors) in ${seconds.toFixed(1)} s: peak RSS growth ${((peak - baseline) / fileBytes).toFixed(2)}x the file size`);
  rmSync(directory, { recursive: true, force: true });
}
