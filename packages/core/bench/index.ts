/**
 * `pnpm bench` in @diffssl/core. Prints, from one run on this machine:
 * 1. matmul 256/512/1024 float32: GFLOP/s of the compiled ONNX path (ORT CPU)
 *    and of the reference TypeScript kernel, and their ratio;
 * 2. one SGD train step of a 2-block ViT head (dim 256, 4 heads, MLP ratio 4,
 *    64 tokens, batch 32): steps/s and achieved GFLOP/s as a fraction of the
 *    matmul GFLOP/s measured in the same run; then the same step with
 *    gradient accumulation over 4 micro-batches of 8 (`microBatch: 8`), and
 *    its time as a multiple of the one-run step's.
 * 3. the worker-thread runner (`thread: 'worker'`) against the in-thread one:
 *    time per run of a small model (linear 64 -> 10, batch 8) and of the 512
 *    matmul, as worker/in-thread ratios of median run times, and the time to
 *    open each runner.
 * Figures are indicative: the machine is shared; compare ratios, not seconds.
 */
import {
  add,
  compileModel,
  compileTrainStep,
  createRunner,
  crossEntropy,
  Graph,
  gelu,
  HostTensor,
  layerNorm,
  linear,
  matmul,
  reshape,
  scaledDotProductAttention,
  sgd,
  slice,
  transpose,
  type Dim,
  type OnnxModel,
  type SymbolicTensor,
} from '../src/index.js';
import { matmulKernel } from '../src/ops/matmul.js';
import { secondsPerRun, vitForwardFlops } from '@diffssl/testing';

function random(shape: number[], seed: number, scale = 1): HostTensor<'float32'> {
  let state = seed;
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    values[i] = (state / 2147483648 - 0.5) * 2 * scale;
  }
  return HostTensor.from('float32', shape, values);
}

async function benchMatmul(size: number): Promise<number> {
  const graph = new Graph();
  const a = graph.input('a', 'float32', [size, size]);
  const b = graph.input('b', 'float32', [size, size]);
  const runner = await createRunner(compileModel({ outputs: { c: matmul(a, b) } }), { executionProviders: ['cpu'] });
  const feeds = { a: random([size, size], 1), b: random([size, size], 2) };
  const flops = 2 * size ** 3;
  const onnxSeconds = await secondsPerRun(() => runner.run(feeds), 2);
  await runner.release();
  const out = new Float32Array(size * size);
  const referenceSeconds = await secondsPerRun(() => matmulKernel(feeds.a.data, feeds.b.data, out, size, size, size), size >= 1024 ? 4 : 2, 1);
  const onnx = flops / onnxSeconds / 1e9;
  const reference = flops / referenceSeconds / 1e9;
  console.log(`matmul ${size}: ONNX ${onnx.toFixed(1)} GFLOP/s, reference TS ${reference.toFixed(2)} GFLOP/s, ratio ${(onnx / reference).toFixed(1)}x`);
  return onnx;
}

/** A pre-norm ViT block as in the reference AttentionHead. */
function vitBlock(
  graph: Graph,
  x: SymbolicTensor,
  prefix: string,
  dim: number,
  heads: number,
  mlpRatio: number,
  seed: number,
  batch: Dim,
  tokens: number,
): { y: SymbolicTensor; weights: SymbolicTensor[] } {
  const w = (name: string, shape: number[], scale: number) => graph.weight(`${prefix}.${name}`, random(shape, seed++, scale));
  const ones = (name: string) => graph.weight(`${prefix}.${name}`, HostTensor.from('float32', [dim], new Array<number>(dim).fill(1)));
  const zeros = (name: string, size = dim) => graph.weight(`${prefix}.${name}`, HostTensor.zeros('float32', [size]));
  const weights = [
    ones('norm1.weight'),
    zeros('norm1.bias'),
    w('qkv.weight', [3 * dim, dim], dim ** -0.5),
    w('proj.weight', [dim, dim], dim ** -0.5),
    zeros('proj.bias'),
    ones('norm2.weight'),
    zeros('norm2.bias'),
    w('fc1.weight', [mlpRatio * dim, dim], dim ** -0.5),
    zeros('fc1.bias', mlpRatio * dim),
    w('fc2.weight', [dim, mlpRatio * dim], (mlpRatio * dim) ** -0.5),
    zeros('fc2.bias'),
  ];
  const [n1w, n1b, qkvW, projW, projB, n2w, n2b, fc1W, fc1B, fc2W, fc2B] = weights as [SymbolicTensor, ...SymbolicTensor[]];
  const headDim = dim / heads;
  const qkv = transpose(reshape(linear(layerNorm(x, n1w, n1b), qkvW!), [batch, tokens, 3, heads, headDim]), [2, 0, 3, 1, 4]);
  const part = (i: number) => reshape(slice(qkv, [i], [i + 1], [0]), [batch, heads, tokens, headDim]);
  const mixed = reshape(transpose(scaledDotProductAttention(part(0), part(1), part(2), headDim ** -0.5), [0, 2, 1, 3]), [batch, tokens, dim]);
  const h = add(x, linear(mixed, projW!, projB!));
  const y = add(h, linear(gelu(linear(layerNorm(h, n2w!, n2b!), fc1W!, fc1B!)), fc2W!, fc2B!));
  return { y, weights };
}

/**
 * The ViT head step; with `microBatch`, the same step as gradient accumulation
 * (the graph's batch axis is then the named size 'batch', which a split needs).
 * Returns seconds per step.
 */
async function benchVitTrainStep(matmulGflops: number, microBatch?: number, cpuMemoryArena?: boolean): Promise<number> {
  const [batchSize, tokens, dim, heads, mlpRatio, classes] = [32, 64, 256, 4, 4, 10];
  const batch: Dim = microBatch === undefined ? batchSize : 'batch';
  const graph = new Graph();
  const x = graph.input('x', 'float32', [batch, tokens, dim]);
  const labels = graph.input('labels', 'int64', [batch]);
  const first = vitBlock(graph, x, 'layers.1', dim, heads, mlpRatio, 10, batch, tokens);
  const second = vitBlock(graph, first.y, 'layers.2', dim, heads, mlpRatio, 30, batch, tokens);
  const pooled = reshape(slice(second.y, [0], [1], [1]), [batch, dim]);
  const headWeight = graph.weight('head.weight', random([classes, dim], 50, dim ** -0.5));
  const headBias = graph.weight('head.bias', HostTensor.zeros('float32', [classes]));
  const logits = linear(pooled, headWeight, headBias);
  const loss = crossEntropy(logits, labels);
  const step = await compileTrainStep({
    loss,
    parameters: [...first.weights, ...second.weights, headWeight, headBias],
    optimizer: sgd({ momentum: 0.9 }),
    microBatch,
    runner: { executionProviders: ['cpu'], ...(cpuMemoryArena === undefined ? {} : { cpuMemoryArena }) },
  });
  const feeds = {
    x: random([batchSize, tokens, dim], 3),
    labels: HostTensor.from(
      'int64',
      [batchSize],
      Array.from({ length: batchSize }, (_, i) => BigInt(i % classes)),
    ),
  };
  const seconds = await secondsPerRun(() => step.run(feeds, { learningRate: 0.01 }), 6);
  await step.release();
  const flopsPerStep = 3 * (vitForwardFlops(batchSize, tokens, dim, mlpRatio, 2) + 2 * batchSize * dim * classes);
  const achieved = flopsPerStep / seconds / 1e9;
  console.log(
    `ViT head train step (2 blocks, dim ${dim}, ${heads} heads, MLP x${mlpRatio}, ${tokens} tokens, batch ${batchSize}${microBatch === undefined ? '' : ` as micro-batches of ${microBatch}`}, SGD${cpuMemoryArena ? ', ORT memory arena on' : ''}): ${(1 / seconds).toFixed(2)} steps/s, ` +
      `${achieved.toFixed(1)} GFLOP/s = ${(achieved / matmulGflops).toFixed(2)} of the 512 matmul rate`,
  );
  return seconds;
}

/** Opens a runner, times single runs for `seconds` after a warm-up run, and releases it: seconds to open and per run. */
async function measureRuns(
  model: OnnxModel,
  feeds: Record<string, HostTensor>,
  thread: 'main' | 'worker',
  seconds: number,
): Promise<{ open: number; runs: number[] }> {
  const opened = performance.now();
  const runner = await createRunner(model, { executionProviders: ['cpu'], thread });
  const open = (performance.now() - opened) / 1000;
  await runner.run(feeds);
  const runs: number[] = [];
  const start = performance.now();
  while (runs.length < 3 || performance.now() - start < seconds * 1000) {
    const before = performance.now();
    await runner.run(feeds);
    runs.push((performance.now() - before) / 1000);
  }
  await runner.release();
  return { open, runs };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * Median seconds per run on the calling thread and on a worker thread. The two
 * alternate in short rounds, one runner open at a time (an idle ORT session's
 * spinning threads would slow the other), so that load changes on the shared
 * machine hit both alike.
 */
async function benchThreads(label: string, model: OnnxModel, feeds: Record<string, HostTensor>, seconds: number): Promise<void> {
  const samples = { main: { open: [] as number[], runs: [] as number[] }, worker: { open: [] as number[], runs: [] as number[] } };
  for (let round = 0; round < 4; round++) {
    for (const thread of ['main', 'worker'] as const) {
      const { open, runs } = await measureRuns(model, feeds, thread, seconds / 8);
      samples[thread].open.push(open);
      samples[thread].runs.push(...runs);
    }
  }
  const [inThread, onWorker] = [median(samples.main.runs), median(samples.worker.runs)];
  const difference = (onWorker - inThread) * 1e6;
  const ms = (value: number) => (value * 1000).toFixed(value < 0.001 ? 3 : 2);
  console.log(
    `${label}: in-thread ${ms(inThread)} ms/run, worker ${ms(onWorker)} ms/run (medians), ratio ${(onWorker / inThread).toFixed(2)}x ` +
      `(${difference >= 0 ? '+' : ''}${difference.toFixed(0)} us per run); opening: in-thread ${ms(median(samples.main.open))} ms, worker ${ms(median(samples.worker.open))} ms`,
  );
}

async function benchWorkerOverhead(): Promise<void> {
  const small = new Graph();
  const x = small.input('x', 'float32', [8, 64]);
  const logits = linear(x, small.weight('w', random([10, 64], 7, 0.125)), small.weight('b', HostTensor.zeros('float32', [10])));
  await benchThreads('worker overhead, small model (linear 64->10, batch 8)', compileModel({ outputs: { logits } }), { x: random([8, 64], 8) }, 2);
  const graph = new Graph();
  const a = graph.input('a', 'float32', [512, 512]);
  const b = graph.input('b', 'float32', [512, 512]);
  await benchThreads('worker overhead, matmul 512', compileModel({ outputs: { c: matmul(a, b) } }), { a: random([512, 512], 1), b: random([512, 512], 2) }, 2);
}

const rates = new Map<number, number>();
for (const size of [256, 512, 1024]) rates.set(size, await benchMatmul(size));
const oneRun = await benchVitTrainStep(rates.get(512)!);
const accumulated = await benchVitTrainStep(rates.get(512)!, 8);
console.log(`gradient accumulation (4 micro-batches of 8) takes ${(accumulated / oneRun).toFixed(2)}x the one-run step's time`);
// Train steps run with ORT's CPU memory arena off by default (it keeps freed memory in the process); the same step with it on:
const withArena = await benchVitTrainStep(rates.get(512)!, undefined, true);
const again = await benchVitTrainStep(rates.get(512)!);
console.log(`memory arena off (the train-step default) takes ${(Math.min(oneRun, again) / withArena).toFixed(2)}x the time of the step with the arena on`);
await benchWorkerOverhead();
