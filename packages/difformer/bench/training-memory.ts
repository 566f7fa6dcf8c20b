/**
 * `pnpm --filter @diffssl/difformer run bench:memory`: peak RSS and seconds per
 * step of the paper's DifFormer training step (blocks 19/24/30 x t
 * 90/150/300, pooled to <= 16x16, dim 1024, 8 heads, MLP x4, 2 blocks, SGD)
 * under ORT's memory-related session options, each variant in its own
 * process (peak RSS is per process).
 *
 * Options: --batch N (default 8), --variants a,b (names below), --seconds S
 * (minimum timed seconds per variant, default 30). A child run is
 * `--variant NAME`.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BuildContext, compileModuleTrainStep, crossEntropy, Graph, HostTensor, sgd, type RunnerOptions } from '@diffssl/core';
import { randomTensor, secondsPerRun } from '@diffssl/testing';
import { admConfig, unetLayout } from '@diffssl/unet';
import { DifFormer, fusionKey } from '../src/index.js';

const variants: Record<string, Partial<RunnerOptions>> = {
  default: {},
  'no-arena': { cpuMemoryArena: false },
  'no-pattern': { memoryPattern: false },
  'no-arena-no-pattern': { cpuMemoryArena: false, memoryPattern: false },
  parallel: { executionMode: 'parallel' },
};

async function child(variant: string, batch: number, seconds: number): Promise<void> {
  const layout = unetLayout(admConfig('256x256_diffusion_uncond'));
  const unet = { block: (n: number) => layout.blocks[n - 1]! };
  const blocks = [19, 24, 30];
  const timesteps = [90, 150, 300];
  const head = DifFormer.fromUNet(unet, {
    firstPassBlocks: blocks,
    timesteps,
    fusion: 'Use_CLS_Token:True:1024,Insert_CLS_Token,Attention:1024:8:4:2,Extract_CLS_Token',
    prePoolSize: 16,
    numClasses: 1000,
    seed: 0,
  });
  const graph = new Graph();
  const context = new BuildContext(graph, head, { mode: 'train' });
  const feeds: Record<string, HostTensor> = {
    labels: HostTensor.from(
      'int64',
      [batch],
      Array.from({ length: batch }, (_, i) => BigInt(i % 1000)),
    ),
  };
  const inputs = new Map();
  let seed = 1;
  for (const t of timesteps) {
    for (const block of blocks) {
      const { channels, resolution } = unet.block(block);
      const key = fusionKey(t, block);
      inputs.set(key, graph.input(key, 'float32', ['batch', channels, resolution, resolution]));
      feeds[key] = randomTensor([batch, channels, resolution, resolution], seed++);
    }
  }
  const logits = head.forward(context, inputs);
  const step = await compileModuleTrainStep({
    context,
    loss: crossEntropy(logits, graph.input('labels', 'int64', ['batch'])),
    optimizer: sgd(),
    runner: { executionProviders: ['cpu'], ...variants[variant] },
  });
  const time = await secondsPerRun(() => step.run(feeds, { learningRate: 0.01 }), seconds);
  await step.release();
  console.log(JSON.stringify({ variant, batch, seconds_per_step: time, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 }));
}

const { values } = parseArgs({
  options: { batch: { type: 'string', default: '8' }, variants: { type: 'string' }, variant: { type: 'string' }, seconds: { type: 'string', default: '30' } },
});
const batch = Number(values.batch);
const seconds = Number(values.seconds);
if (values.variant) {
  if (!variants[values.variant]) throw new Error(`bench:memory: --variant expects one of ${Object.keys(variants).join(', ')}; found ${values.variant}`);
  await child(values.variant, batch, seconds);
} else {
  const names = values.variants ? values.variants.split(',') : Object.keys(variants);
  console.log(`DifFormer training step at the paper's scale, batch ${batch}: peak RSS and seconds per step per ORT session option (each in its own process)`);
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
