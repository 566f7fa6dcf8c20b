/**
 * The DiffSSL paper's settings on guided-diffusion's 256x256 ImageNet model,
 * through `runProtocol`:
 *
 * - GD(L) (`linear`) and the attention head: block 24 at t=150;
 * - DifFormer: blocks 19, 24, 30 at t = 90, 150, 300;
 * - DifFeed: feedback from decoder blocks 21, 24, 27, 30, 33, 36 into encoder
 *   blocks 17, 14, 11, 8, 5, 2 (guided-diffusion's 2·18 + 2 − b), the head on
 *   the second pass's block 24 at t=150.
 *
 * With the real model (about 2.2 GB; download `256x256_diffusion_uncond.pt`
 * from https://github.com/openai/guided-diffusion, nothing here fetches it) and
 * ImageNet-style data (`train/<class>/*.JPEG`, `val/<class>/*.JPEG`; images are
 * resized and center-cropped to 256x256):
 *
 *   pnpm --filter @diffssl/examples run paper-settings -- \
 *     --checkpoint /models/256x256_diffusion_uncond.pt --config 256x256_diffusion_uncond \
 *     --data /data/imagenet-100 --protocols linear,difformer,diffeed --epochs 15 \
 *     --cache-directory /data/diffssl-features --out runs/paper --providers cuda,cpu
 *
 * This is GPU work: on a CPU the 256x256 U-Net takes seconds per image and
 * timestep, and DifFeed runs it twice per training step. `--cache-directory`
 * is the feature cache of the frozen protocols (features are extracted once and
 * reused by later runs and other heads). `runProtocol` extracts in float32; for
 * float16 extraction see `extract-features.ts` (`--dtype float16`).
 *
 * Without options it runs the same settings, CI-sized, on the 37-block test
 * U-Net of the fixtures: the 256x256 model's block layout and numbering at
 * 32x32 with random weights (so accuracies are near chance: this checks that
 * the settings build and train, not what they reach), 64 training and 32 test
 * images of the embedded Fashion-MNIST, 1 epoch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ExecutionProvider } from '@diffssl/core';
import { FASHION_MNIST_CLASSES, runProtocol, type RunOptions } from '@diffssl/eval';
import { ASSETS, EMBEDDED, scratchFolder, scriptArguments, secondsSince, writeFixture37BlockFlags } from './lib/common.js';

/** The paper's settings per protocol. */
const PAPER: Record<'linear' | 'attention' | 'difformer' | 'diffeed', Pick<RunOptions, 'blocks' | 'timesteps' | 'feedbackFrom'>> = {
  linear: { blocks: [24], timesteps: [150] },
  attention: { blocks: [24], timesteps: [150] },
  difformer: { blocks: [19, 24, 30], timesteps: [90, 150, 300] },
  diffeed: { blocks: [24], timesteps: [150], feedbackFrom: [21, 24, 27, 30, 33, 36] },
};

const { values } = parseArgs({
  args: scriptArguments(),
  options: {
    checkpoint: { type: 'string' },
    config: { type: 'string' },
    data: { type: 'string' },
    protocols: { type: 'string', default: 'linear,attention,difformer,diffeed' },
    epochs: { type: 'string' },
    'train-limit': { type: 'string' },
    'test-limit': { type: 'string' },
    'cache-directory': { type: 'string' },
    out: { type: 'string' },
    providers: { type: 'string' },
  },
});

const ci = !values.checkpoint;
let config = values.config;
if (ci) {
  // The 37-block test U-Net's flags live in its fixture's metadata.
  const folder = mkdtempSync(join(tmpdir(), 'diffssl-flags-'));
  config = join(folder, 'flags.json');
  process.on('exit', () => rmSync(folder, { recursive: true, force: true }));
  writeFixture37BlockFlags(config);
}
if (!config) throw new Error('--config: give the preset (256x256_diffusion_uncond) or a flags file of the checkpoint');
const checkpoint = values.checkpoint ?? join(ASSETS, 'fixtures/adm-37block-random.pt');
const data = values.data ?? EMBEDDED.data;
const scratch = values.out ?? scratchFolder('paper-settings');
const protocols = values.protocols.split(',') as (keyof typeof PAPER)[];
for (const protocol of protocols)
  if (!(protocol in PAPER)) throw new Error(`--protocols: expected some of ${Object.keys(PAPER).join(', ')}; found '${protocol}'`);
const limits = {
  ...(values['train-limit'] || ci ? { trainLimit: Number(values['train-limit'] ?? 64) } : {}),
  ...(values['test-limit'] || ci ? { testLimit: Number(values['test-limit'] ?? 32) } : {}),
  ...(values.epochs || ci ? { epochs: Number(values.epochs ?? 1) } : {}),
};
console.log(
  ci
    ? "the paper's settings, CI-sized, on the 37-block test U-Net (random weights, 32x32): 64 training and 32 test Fashion-MNIST images, 1 epoch; accuracies near chance are expected"
    : `the paper's settings on ${checkpoint}`,
);

const summary: string[] = [];
for (const protocol of protocols) {
  const started = performance.now();
  const settings = PAPER[protocol];
  console.log(
    `\n${protocol}: blocks ${settings.blocks!.join(', ')} at t = ${settings.timesteps!.join(', ')}${settings.feedbackFrom ? `, feedback from ${settings.feedbackFrom.join(', ')}` : ''}`,
  );
  const report = await runProtocol({
    protocol,
    checkpoint,
    config,
    data,
    // The embedded Fashion-MNIST images are 28x28; the 37-block test U-Net takes 32x32.
    ...(data === EMBEDDED.data ? { classNames: FASHION_MNIST_CLASSES, resize: true } : {}),
    ...settings,
    ...limits,
    out: join(scratch, protocol),
    cacheDirectory: values['cache-directory'] ?? join(scratch, 'features'),
    ...(values.providers ? { runner: { executionProviders: values.providers.split(',') as ExecutionProvider[] } } : {}),
    progress: ci ? 'off' : 'auto',
    log: (line) => console.log(`  ${line}`),
  });
  summary.push(`${protocol}: top-1 ${report.top1.toFixed(2)} % on ${report.test_images} test images (${secondsSince(started)} s)`);
  console.log(`  ${summary[summary.length - 1]}`);
}
console.log(`\n${summary.join('\n')}`);
