/**
 * `pnpm --filter @diffssl/difformer run bench:memory`: peak RSS and seconds per
 * step of the paper's DifFormer training step (blocks 19/24/30 x t
 * 90/150/300, pooled to <= 16x16, dim 1024, 8 heads, MLP x4, 2 blocks, SGD)
 * under ORT's memory-related session options, each variant in its own
 * process (peak RSS is per process).
 *
 * Options: --batch N (default 8), --variants a,b (names below), --seconds S
 * (minimum timed seconds per variant, default 30), --blocks a,b and
 * --timesteps a,b (default 19,24,30 and 90,150,300; `--blocks 24
 * --timesteps 150` is the attention head). A child run is `--variant NAME`.
 *
 * `--plan` runs nothing: it walks the forward and backward graph in creation
 * order (a topological order), frees each tensor after its last use, and
 * prints the peak of the live intermediate tensors, what is live at that
 * peak (forward activations kept for the backward pass, by op, and backward
 * temporaries), as an estimate of where the memory goes before ORT's own
 * planning, fusions and arena; `--top N` also lists the N largest tensors
 * live there (default 3).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bytesPerElement, compileModuleTrainStep, gradients, sgd, type RunnerOptions, type SymbolicTensor } from '@diffssl/core';
import { secondsPerRun } from '@diffssl/testing';
import { paperHeadProblem } from './paper-head.js';

// Every variant states both options.
const variants: Record<string, Partial<RunnerOptions>> = {
  default: { cpuMemoryArena: true, memoryPattern: true },
  'no-arena': { cpuMemoryArena: false, memoryPattern: true },
  'no-pattern': { cpuMemoryArena: true, memoryPattern: false },
  'no-arena-no-pattern': { cpuMemoryArena: false, memoryPattern: false },
  parallel: { cpuMemoryArena: true, memoryPattern: true, executionMode: 'parallel' },
};

let blocks = [19, 24, 30];
let timesteps = [90, 150, 300];

function buildStep(batch: number, symbolicBatch: boolean) {
  return paperHeadProblem(blocks, timesteps, batch, symbolicBatch);
}

/** Live-tensor peak of forward + backward in creation order (see the file's comment). */
function plan(batch: number, top: number): void {
  const { context, loss } = buildStep(batch, false);
  const weights = context.trainableWeights().map(({ weight }) => weight);
  const grads = gradients(loss, weights);
  const reachable = new Map<number, SymbolicTensor>();
  const stack: SymbolicTensor[] = [loss, ...grads];
  while (stack.length) {
    const tensor = stack.pop()!;
    if (reachable.has(tensor.id)) continue;
    reachable.set(tensor.id, tensor);
    if (tensor.producer) stack.push(...tensor.producer.inputs);
  }
  const bytes = (t: SymbolicTensor) => t.shape.reduce<number>((a, d) => a * Number(d), 1) * bytesPerElement(t.dtype);
  const lastUse = new Map<number, number>();
  const nodes = new Map<number, NonNullable<SymbolicTensor['producer']>>();
  for (const tensor of reachable.values()) {
    if (!tensor.producer) continue;
    nodes.set(tensor.producer.id, tensor.producer);
    for (const input of tensor.producer.inputs) lastUse.set(input.id, Math.max(lastUse.get(input.id) ?? -1, tensor.producer.id));
  }
  const kept = new Set([loss.id, ...grads.map((g) => g.id)]);
  const forwardEnd = loss.producer!.id;
  const live = new Map<number, SymbolicTensor>();
  let current = 0;
  let peak = 0;
  let atPeak: SymbolicTensor[] = [];
  let savedTotal = 0;
  for (const tensor of reachable.values())
    if (tensor.producer && tensor.producer.id <= forwardEnd && (lastUse.get(tensor.id) ?? 0) > forwardEnd) savedTotal += bytes(tensor);
  for (const node of [...nodes.values()].sort((a, b) => a.id - b.id)) {
    for (const output of node.outputs) {
      if (!reachable.has(output.id)) continue;
      live.set(output.id, output);
      current += bytes(output);
    }
    if (current > peak) {
      peak = current;
      atPeak = [...live.values()];
    }
    for (const input of node.inputs) {
      if (input.producer && lastUse.get(input.id) === node.id && !kept.has(input.id) && live.delete(input.id)) current -= bytes(input);
    }
  }
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const groups = new Map<string, { bytes: number; count: number }>();
  for (const tensor of atPeak) {
    const key = `${tensor.producer!.id <= forwardEnd ? 'forward' : 'backward'} ${tensor.producer!.op.name}`;
    const entry = groups.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += bytes(tensor);
    entry.count++;
    groups.set(key, entry);
  }
  const inputBytes = [...reachable.values()].filter((t) => t.source === 'input').reduce((a, t) => a + bytes(t), 0);
  const weightBytes = weights.reduce((a, t) => a + bytes(t), 0);
  console.log(
    `DifFormer training graph (blocks ${blocks.join('/')} x t ${timesteps.join('/')}) at batch ${batch}: ${nodes.size} nodes; inputs ${gib(inputBytes)}, trained weights ${gib(weightBytes)} (and as much again for their gradients)`,
  );
  console.log(`  forward tensors the backward pass reads (saved activations): ${gib(savedTotal)}`);
  console.log(`  peak of live intermediate tensors, creation order, each freed after its last use: ${gib(peak)}; live at the peak:`);
  for (const tensor of [...atPeak].sort((x, y) => bytes(y) - bytes(x)).slice(0, top))
    console.log(
      `    largest: ${tensor.producer!.op.name} [${tensor.shape.join(', ')}] ${gib(bytes(tensor))} (node ${tensor.producer!.id}, inputs ${tensor.producer!.inputs.map((i) => `[${i.shape.join(',')}]`).join(' ')})`,
    );
  for (const [key, { bytes: b, count }] of [...groups].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, 14))
    console.log(`    ${key}: ${gib(b)} (${count} tensors)`);
}

async function child(variant: string, batch: number, seconds: number): Promise<void> {
  const { context, loss, feeds } = buildStep(batch, true);
  const step = await compileModuleTrainStep({
    context,
    loss,
    optimizer: sgd(),
    runner: { executionProviders: ['cpu'], ...variants[variant] },
  });
  const time = await secondsPerRun(() => step.run(feeds, { learningRate: 0.01 }), seconds);
  await step.release();
  console.log(JSON.stringify({ variant, batch, seconds_per_step: time, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 }));
}

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '8' },
    variants: { type: 'string' },
    variant: { type: 'string' },
    seconds: { type: 'string', default: '30' },
    plan: { type: 'boolean', default: false },
    top: { type: 'string', default: '3' },
    blocks: { type: 'string' },
    timesteps: { type: 'string' },
  },
});
const batch = Number(values.batch);
if (values.blocks) blocks = values.blocks.split(',').map(Number);
if (values.timesteps) timesteps = values.timesteps.split(',').map(Number);
const seconds = Number(values.seconds);
if (values.plan) {
  plan(batch, Number(values.top));
} else if (values.variant) {
  if (!variants[values.variant]) throw new Error(`bench:memory: --variant expects one of ${Object.keys(variants).join(', ')}; found ${values.variant}`);
  await child(values.variant, batch, seconds);
} else {
  const names = values.variants ? values.variants.split(',') : Object.keys(variants);
  console.log(
    `DifFormer training step at the paper's scale (blocks ${blocks.join('/')} x t ${timesteps.join('/')}), batch ${batch}: peak RSS and seconds per step per ORT session option (each in its own process)`,
  );
  for (const name of names) {
    const run = spawnSync(
      process.execPath,
      [
        '--conditions=@diffssl/source',
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--variant',
        name,
        '--batch',
        String(batch),
        '--seconds',
        String(seconds),
        '--blocks',
        blocks.join(','),
        '--timesteps',
        timesteps.join(','),
      ],
      { encoding: 'utf8' },
    );
    if (run.status !== 0) {
      console.log(`  ${name}: failed (exit ${run.status ?? run.signal}) ${run.stderr.trim().split('\n').pop()}`);
      continue;
    }
    const result = JSON.parse(run.stdout.trim().split('\n').pop()!) as { seconds_per_step: number; peak_rss_bytes: number };
    console.log(
      `  ${name} (${JSON.stringify(variants[name])}): ${result.seconds_per_step.toFixed(2)} s/step, peak RSS ${(result.peak_rss_bytes / 2 ** 30).toFixed(2)} GiB`,
    );
  }
}
