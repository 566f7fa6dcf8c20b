/**
 * `pnpm bench` in @diffssl/unet, on the embedded adm-fm28 checkpoint (ORT CPU):
 * 1. throughput (images/s) extracting blocks {5, 10, 14} at t=150, batch 64,
 *    and achieved GFLOP/s as a fraction of ORT's matmul GFLOP/s in the same run;
 * 2. early exit: block 5 alone vs the full forward (ratio of times);
 * 3. peak RSS while streaming features of the 10,000 embedded Fashion-MNIST
 *    training images, discarding each batch, and the RSS growth of `extract`
 *    on 2,000 images against the size of its outputs;
 * 4. int8 against float32 extraction: the rate of each (each timed alone in
 *    a fresh process, float32, int8, int8, float32) and their ratio, and each
 *    block's relative feature error (RMS of the difference over RMS of float32), on adm-fm28 (blocks 5, 10, 14 at t=150,
 *    batch 64) and on the 256x256 layout (preset 256x256_diffusion_uncond,
 *    random weights, block 24 at t=150, batch 2). `--int8-only` runs this
 *    part alone (`pnpm bench -- --int8-only`).
 * 5. files over 2 GiB: a synthetic checkpoint with the published 256x256
 *    model's tensors (2.21 GB, written as .safetensors and as a torch zip):
 *    seconds and peak RSS growth as a multiple of the file size for loading it,
 *    and for loading + building the float16 / float32 extraction model and
 *    writing it to disk with external data (each in a fresh process).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { HostTensor } from '@diffssl/core';
import {
  ADM_PRESETS,
  admConfig,
  AdmUNet,
  createFeatureExtractor,
  expectedWeights,
  initialAdmWeights,
  readTorchCheckpoint,
  type GuidedDiffusionFlags,
  type UNetPrecision,
} from '../src/index.js';
import {
  embeddedFlags,
  EMBEDDED_DATA,
  fixturePath,
  matmulRate,
  randomTensor,
  secondsPerRun,
  statePickle,
  writeTorchZip,
  type TensorRecord,
} from '@diffssl/testing';

const checkpoint = fixturePath('adm-fm28.pt');
const flags = embeddedFlags() as unknown as GuidedDiffusionFlags;
const cpu = { executionProviders: ['cpu'] as const };

function syntheticImages(count: number): HostTensor<'uint8'> {
  const pixels = new Uint8Array(count * 28 * 28);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  return HostTensor.from('uint8', [count, 1, 28, 28], pixels);
}

/** The embedded FM-10k training images (assets/data/fashion-mnist-10k). */
function fashionMnist(count: number): { images: HostTensor<'uint8'>; source: string } {
  const bytes = gunzipSync(readFileSync(`${EMBEDDED_DATA}train-images-idx3-ubyte.gz`));
  return {
    images: HostTensor.from('uint8', [count, 1, 28, 28], new Uint8Array(bytes.buffer, bytes.byteOffset + 16, count * 784).slice()),
    source: 'Fashion-MNIST train images',
  };
}

/** RMS of (a - b) over RMS of b. */
function rmsRelative(a: HostTensor, b: HostTensor): number {
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < b.size; i++) {
    difference += ((a.data[i] as number) - (b.data[i] as number)) ** 2;
    norm += (b.data[i] as number) ** 2;
  }
  return Math.sqrt(difference / norm);
}

/** An int8-against-float32 comparison: adm-fm28, or the 256x256 layout with random weights. */
type Int8Case = 'fm28' | '256';

async function int8Case(name: Int8Case): Promise<{ label: string; unet: AdmUNet; blocks: number[]; images: HostTensor; seconds: number }> {
  if (name === 'fm28') {
    const fm28 = new AdmUNet(flags, await readTorchCheckpoint(checkpoint));
    return { label: 'adm-fm28 blocks {5,10,14} at t=150, batch 64', unet: fm28, blocks: [5, 10, 14], images: syntheticImages(64), seconds: 8 };
  }
  // The published 256x256 layout with random weights: PyTorch's default initialization, and the zero_module
  // convolutions (zero at initialization) drawn like the others so that every residual branch computes.
  const config = admConfig(ADM_PRESETS['256x256_diffusion_uncond']);
  let seed = 1;
  const weights = new Map<string, HostTensor>();
  for (const [name, tensor] of initialAdmWeights(config, 0)) {
    const zero = tensor.rank === 4 && !(tensor.data as Float32Array).some((v) => v !== 0);
    weights.set(
      name,
      zero ? randomTensor(tensor.shape, seed++, -1 / Math.sqrt(tensor.size / tensor.shape[0]!), 1 / Math.sqrt(tensor.size / tensor.shape[0]!)) : tensor,
    );
  }
  const pixels = new Uint8Array(2 * 3 * 256 * 256).map((_, i) => (i * 2654435761) >>> 24);
  return {
    label: '256x256 layout (random weights) block 24 at t=150, batch 2',
    unet: new AdmUNet(config, weights),
    blocks: [24],
    images: HostTensor.from('uint8', [2, 3, 256, 256], pixels),
    seconds: 20,
  };
}

/** Child process (`--int8-rate CASE DTYPE`): images/s of one precision, alone in a fresh process. */
async function int8Rate(name: Int8Case, dtype: UNetPrecision): Promise<number> {
  const { unet, blocks, images, seconds } = await int8Case(name);
  const extractor = await createFeatureExtractor({ unet, blocks, timesteps: [150], batchSize: images.shape[0]!, runner: cpu, dtype });
  const time = await secondsPerRun(() => extractor.extract(images), seconds);
  await extractor.release();
  return images.shape[0]! / time;
}

/**
 * float32 against int8 extraction of the same images: each block's error
 * (both extractors in this process), and the rate of each precision timed
 * alone in a fresh process, in the order float32, int8, int8, float32 (the
 * mean of each pair). Timed in one process, the second extractor ran up to
 * 20 % slower than the first whichever precision it was (likely ORT's spinning
 * threads and the heap the first left behind), and alternating calls between
 * two open sessions slowed both.
 */
async function comparePrecisions(name: Int8Case): Promise<void> {
  // The timing children first: this process holds no model while they run (the 256x256 one is 2.2 GB).
  const rates = { float32: [] as number[], int8: [] as number[] };
  for (const dtype of ['float32', 'int8', 'int8', 'float32'] as const) {
    const report = execFileSync(
      process.execPath,
      ['--conditions=@diffssl/source', '--import', 'tsx', fileURLToPath(import.meta.url), '--int8-rate', name, dtype],
      {
        encoding: 'utf8',
      },
    );
    const rate = Number(report.trim().split('\n').pop());
    if (!(rate > 0)) throw new Error(`bench: the ${dtype} timing child of ${name} printed '${report.trim()}'; expected images/s on its last line`);
    rates[dtype].push(rate);
  }
  const { label, unet, blocks, images } = await int8Case(name);
  const features = new Map<UNetPrecision, Map<string, HostTensor<'float32'>>>();
  for (const dtype of ['float32', 'int8'] as const) {
    const extractor = await createFeatureExtractor({ unet, blocks, timesteps: [150], batchSize: images.shape[0]!, runner: cpu, dtype });
    features.set(dtype, await extractor.extract(images));
    await extractor.release();
  }
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const [float32, int8] = [mean(rates.float32), mean(rates.int8)];
  const each = (values: number[]) => values.map((v) => v.toPrecision(3)).join(' and ');
  const errors = [...features.get('float32')!.keys()].map(
    (key) => `${key} ${(100 * rmsRelative(features.get('int8')!.get(key)!, features.get('float32')!.get(key)!)).toFixed(2)}%`,
  );
  console.log(
    `int8 vs float32, ${label}: float32 ${float32.toPrecision(3)} images/s (${each(rates.float32)}), int8 ${int8.toPrecision(3)} images/s (${each(rates.int8)}) = ${(int8 / float32).toFixed(2)}x, each timed alone in a fresh process; relative feature error (RMS) ${errors.join(', ')}`,
  );
}

const rateArgument = process.argv.indexOf('--int8-rate');
if (rateArgument >= 0) {
  const [name, dtype] = process.argv.slice(rateArgument + 1, rateArgument + 3);
  if ((name !== 'fm28' && name !== '256') || (dtype !== 'float32' && dtype !== 'int8'))
    throw new Error(`bench: --int8-rate expects fm28|256 and float32|int8; found ${name} ${dtype}`);
  console.log(await int8Rate(name, dtype));
  process.exit(0);
}
if (process.argv.includes('--int8-only')) {
  await comparePrecisions('fm28');
  await comparePrecisions('256');
  process.exit(0);
}

const rate = await matmulRate();
console.log(`ORT matmul 512: ${rate.toFixed(1)} GFLOP/s`);

const unet = new AdmUNet(flags, await readTorchCheckpoint(checkpoint));
const batch = syntheticImages(64);
const throughputExtractor = await createFeatureExtractor({ unet, blocks: [5, 10, 14], timesteps: [150], batchSize: 64, runner: cpu });
const throughputTime = await secondsPerRun(() => throughputExtractor.extract(batch), 8);
await throughputExtractor.release();
const flops = 2 * unet.forwardMacs(14) * 64;
console.log(
  `extract blocks {5,10,14} at t=150, batch 64: ${(64 / throughputTime).toFixed(1)} images/s, ${(flops / throughputTime / 1e9).toFixed(1)} GFLOP/s = ${(flops / throughputTime / 1e9 / rate).toFixed(2)} of the matmul rate`,
);

const early = await createFeatureExtractor({ unet, blocks: [5], timesteps: [150], batchSize: 64, runner: cpu });
const full = await createFeatureExtractor({ unet, blocks: [unet.blockCount], timesteps: [150], batchSize: 64, runner: cpu });
const earlyTime = await secondsPerRun(() => early.extract(batch), 5);
const fullTime = await secondsPerRun(() => full.extract(batch), 5);
await early.release();
await full.release();
console.log(
  `early exit: block 5 alone ${(earlyTime * 1000).toFixed(0)} ms vs full forward (block ${unet.blockCount}) ${(fullTime * 1000).toFixed(0)} ms per batch of 64 = ${((100 * earlyTime) / fullTime).toFixed(0)}%`,
);

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
console.log(
  `streamed ${seen} ${source} (blocks {5,10,14}, t=150) in ${((performance.now() - start) / 1000).toFixed(0)} s; peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`,
);

{
  // extract() writes each batch into outputs allocated once: RSS grows by about the outputs, not twice them.
  const extractor = await createFeatureExtractor({ unet, blocks: [5, 10, 14], timesteps: [150], batchSize: 64, runner: cpu });
  const subset = HostTensor.from('uint8', [2000, 1, 28, 28], images.data.subarray(0, 2000 * 784));
  await extractor.extract(subset.slice([0], [64]).contiguous());
  const before = process.memoryUsage.rss();
  let high = before;
  const sampler = setInterval(() => (high = Math.max(high, process.memoryUsage.rss())), 2);
  const features = await extractor.extract(subset);
  clearInterval(sampler);
  high = Math.max(high, process.memoryUsage.rss());
  await extractor.release();
  const outputBytes = [...features.values()].reduce((total, tensor) => total + tensor.data.byteLength, 0);
  console.log(
    `extract 2000 images (blocks {5,10,14}): outputs ${(outputBytes / 2 ** 20).toFixed(0)} MiB, RSS growth ${((high - before) / 2 ** 20).toFixed(0)} MiB = ${((high - before) / outputBytes).toFixed(2)}x the outputs`,
  );
}

await comparePrecisions('fm28');
await comparePrecisions('256');

{
  // A synthetic checkpoint with the tensors of the published 256x256 unconditional model (2.21 GB of float32).
  const presetFlags = ADM_PRESETS['256x256_diffusion_uncond'];
  const shapes = [...expectedWeights(admConfig(presetFlags))];
  const sizes = shapes.map(([, shape]) => shape.reduce((a, b) => a * b, 1) * 4);
  const fileBytes = sizes.reduce((a, b) => a + b, 0);
  const pattern = new Float32Array(Math.max(...sizes) / 4).map((_, i) => Math.sin(i) * 0.02);
  const patternBytes = new Uint8Array(pattern.buffer);
  const directory = mkdtempSync(join(tmpdir(), 'diffssl-bench-'));
  const flagsFile = join(directory, 'flags.json');
  writeFileSync(flagsFile, JSON.stringify(presetFlags));
  const safetensorsPath = join(directory, 'synthetic-256.safetensors');
  {
    const header: Record<string, unknown> = {};
    let offset = 0;
    shapes.forEach(([name, shape], i) => {
      header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + sizes[i]!] };
      offset += sizes[i]!;
    });
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const fd = openSync(safetensorsPath, 'w');
    const length = new Uint8Array(8);
    new DataView(length.buffer).setBigUint64(0, BigInt(json.length), true);
    writeSync(fd, length);
    writeSync(fd, json);
    for (const size of sizes) writeSync(fd, patternBytes, 0, size);
    closeSync(fd);
  }
  const torchPath = join(directory, 'synthetic-256.pt');
  {
    const records: TensorRecord[] = shapes.map(([, shape], i) => {
      const strides = shape.map((_, axis) => shape.slice(axis + 1).reduce((a, b) => a * b, 1));
      return { storageType: 'FloatStorage', bytes: patternBytes.subarray(0, sizes[i]!), numel: sizes[i]! / 4, offset: 0, shape, strides };
    });
    await writeTorchZip(torchPath, [
      [
        'archive/data.pkl',
        statePickle(
          shapes.map(([name]) => name),
          records,
        ),
      ],
      ...records.map((record, index) => [`archive/data/${index}`, record.bytes] as [string, Uint8Array]),
      ['archive/version', new TextEncoder().encode('3\n')],
    ]);
  }
  // Measure each in a fresh process, so memory freed by the writer above does not hide the loader's allocations.
  const measure = (path: string, mode: string) => {
    const report = execFileSync(
      process.execPath,
      ['--conditions=@diffssl/source', '--import', 'tsx', fileURLToPath(new URL('./load-memory.ts', import.meta.url)), path, mode, flagsFile],
      { encoding: 'utf8', maxBuffer: 1 << 20 },
    );
    const { baseline, peak, seconds } = JSON.parse(report) as { baseline: number; peak: number; seconds: number };
    return `${seconds.toFixed(1)} s, peak RSS growth ${((peak - baseline) / fileBytes).toFixed(2)}x the file size`;
  };
  const size = `${(fileBytes / 1e9).toFixed(2)} GB = ${(fileBytes / 2 ** 30).toFixed(2)} GiB, ${shapes.length} tensors`;
  console.log(`load synthetic 256x256 checkpoint, .safetensors (${size}): ${measure(safetensorsPath, 'load')}`);
  console.log(`load synthetic 256x256 checkpoint, torch zip (${size}): ${measure(torchPath, 'load')}`);
  console.log(
    `load + build float16 extraction model (block 24) + write it with external data, from .safetensors: ${measure(safetensorsPath, 'build-float16')} (the float16 model is 0.50x)`,
  );
  console.log(
    `load + build float32 extraction model (block 24) + write it with external data, from .safetensors: ${measure(safetensorsPath, 'build-float32')}`,
  );
  rmSync(directory, { recursive: true, force: true });
}
