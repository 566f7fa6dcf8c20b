import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileModel, ConfigError, createRunner, Graph, HostTensor, readSafetensors, type SymbolicTensor } from '@diffssl/core';
import type { Command } from 'commander';
import { FASHION_MNIST_CLASSES } from '../data/idx.js';
import { defaultCacheDirectory, runProtocol, type RunOptions } from '../pipeline/run.js';
import { loadUNet } from '../pipeline/unet-source.js';
import type { RunReport } from '../report/run-report.js';
import { markdownTable } from '../report/markdown.js';
import { displayOf, positiveIntegerOption, precisionOption, runnerOf, runtimeOptions } from './options.js';

/** The embedded default: a Fashion-MNIST diffusion U-Net and the FM-10k data, in the repository's `assets/`. */
interface EmbeddedDefault {
  checkpoint: string;
  config: string;
  data: string;
  /** The reference implementation's block outputs of the embedded U-Net, when present. */
  reference: string | undefined;
}

/** Finds the repository's `assets/` from the working directory or this module, upwards. */
export function findEmbeddedDefault(): EmbeddedDefault | undefined {
  const starts = [process.cwd(), dirname(fileURLToPath(import.meta.url))];
  for (const start of starts) {
    let directory = resolve(start);
    for (;;) {
      const assets = join(directory, 'assets');
      const checkpoint = join(assets, 'models/adm-fm28/adm-fm28.pt');
      if (existsSync(checkpoint)) {
        const reference = join(assets, 'fixtures/adm-fm28.features.safetensors');
        return {
          checkpoint,
          config: join(assets, 'models/adm-fm28/flags.json'),
          data: join(assets, 'data/fashion-mnist-10k'),
          reference: existsSync(reference) ? reference : undefined,
        };
      }
      const parent = dirname(directory);
      if (parent === directory) break;
      directory = parent;
    }
  }
  return undefined;
}

/** The reference implementation's FM-10k accuracies (full protocol: 10,000 training images, 28 epochs). */
const REFERENCE_FM10K: Record<string, number> = { pixels: 81.92, linear: 73.42, attention: 85.48 };

/** Checks every block of the U-Net against the reference's outputs; returns the worst relative error. */
async function checkUNet(checkpoint: string, config: string, reference: string): Promise<number> {
  const { unet } = await loadUNet({ checkpoint, config });
  const fixture = readSafetensors(await readFile(reference));
  const t = 150;
  const graph = new Graph();
  const x = graph.input('x', 'float32', ['batch', 3, unet.info.imageSize, unet.info.imageSize]);
  const { blocks } = unet.build(graph, { x, timesteps: graph.input('t', 'int64', ['batch']), taps: unet.blocks.map((block) => block.number) });
  const outputs: Record<string, SymbolicTensor> = Object.fromEntries([...blocks].map(([n, tensor]) => [`block${String(n).padStart(2, '0')}`, tensor]));
  const runner = await createRunner(compileModel({ outputs }), { executionProviders: ['cpu'] });
  const xt = fixture.tensors.get(`t${t}/x_t`)!;
  const result = await runner.run({ x: xt, t: HostTensor.from('int64', [xt.shape[0]!], new Array(xt.shape[0]!).fill(BigInt(t))) });
  await runner.release();
  let worst = 0;
  for (const [name, tensor] of Object.entries(result)) {
    const expected = fixture.tensors.get(`t${t}/${name}`)!.toArray();
    const scale = Math.max(1, ...expected.map(Math.abs));
    const got = tensor.toArray();
    worst = Math.max(worst, Math.max(...got.map((v, i) => Math.abs(v - expected[i]!))) / scale);
  }
  return worst;
}

/** Options of {@link runDemo}. @public */
export interface DemoOptions {
  out: string;
  trainLimit: number;
  testLimit: number;
  epochs: number;
  attentionEpochs: number;
  cacheDirectory: string;
  runner?: RunOptions['runner'];
  /** The U-Net's compute precision for the feature protocols (default float32). */
  precision?: RunOptions['precision'];
  progress?: RunOptions['progress'];
  log: (line: string) => void;
}

/**
 * The README's main job on the embedded default: checks the U-Net against the
 * reference's block outputs, then trains and evaluates the raw-pixel baseline,
 * GD(L) and the attention head (block 10 at t=50) on a subset of FM-10k, and
 * writes a report. Throws when a check fails.
 *
 * @public
 */
export async function runDemo(options: DemoOptions): Promise<{ reports: Record<string, RunReport>; markdown: string }> {
  const embedded = findEmbeddedDefault();
  if (!embedded)
    throw new ConfigError(
      "demo: the embedded default (assets/models/adm-fm28 and assets/data/fashion-mnist-10k) is part of the repository checkout; run the demo from a clone, or use 'diffssl train' with your own --checkpoint, --config and --data",
    );
  const { log } = options;
  const checks: string[] = [];
  if (embedded.reference) {
    const worst = await checkUNet(embedded.checkpoint, embedded.config, embedded.reference);
    if (!(worst <= 1e-4))
      throw new ConfigError(
        `demo: the U-Net's block outputs differ from the reference PyTorch ones by ${worst.toExponential(2)} (relative); expected at most 1e-4`,
      );
    checks.push(`every block of the U-Net at t=150 matches the reference PyTorch outputs (worst relative error ${worst.toExponential(2)})`);
    log(checks[checks.length - 1]!);
  }
  const common = {
    checkpoint: embedded.checkpoint,
    config: embedded.config,
    data: embedded.data,
    classNames: FASHION_MNIST_CLASSES,
    trainLimit: options.trainLimit,
    testLimit: options.testLimit,
    cacheDirectory: options.cacheDirectory,
    runner: options.runner,
    ...(options.precision ? { precision: options.precision } : {}),
    progress: options.progress,
    log,
  };
  const runs: [string, string, Partial<RunOptions>][] = [
    ['pixels', 'Linear on the 784 raw pixels', { protocol: 'pixels', epochs: options.epochs }],
    ['linear', 'GD(L): block 10 (the middle block) at t=50, pooled 2x2, Linear', { protocol: 'linear', blocks: [10], timesteps: [50], epochs: options.epochs }],
    [
      'attention',
      'DiffSSL attention head: block 10 at t=50, 7x7 tokens + CLS, 2 ViT blocks (dim 64)',
      { protocol: 'attention', blocks: [10], timesteps: [50], epochs: options.attentionEpochs },
    ],
  ];
  const reports: Record<string, RunReport> = {};
  for (const [name, , settings] of runs) {
    log(`demo: training ${name}`);
    reports[name] = await runProtocol({ ...common, ...(settings as Pick<RunOptions, 'protocol'>), out: join(options.out, name) });
  }
  for (const [name] of runs) {
    const report = reports[name]!;
    if (report.test_images !== options.testLimit)
      throw new ConfigError(`demo: ${name} scored ${report.test_images} test images; expected all ${options.testLimit}`);
    if (!(report.top1 >= 50))
      throw new ConfigError(`demo: ${name} reached ${report.top1.toFixed(2)}% top-1, far below what it reaches on this data (expected at least 50%)`);
  }
  checks.push(`each run scored all ${options.testLimit} test images and reached at least 50% top-1 (10 classes)`);
  const table = markdownTable(
    ['run', 'what', `top-1 here (${options.trainLimit} train / ${options.testLimit} test images)`, 'epochs', 'reference (full FM-10k, 28 epochs)'],
    runs.map(([name, what, settings]) => [name, what, `${reports[name]!.top1.toFixed(2)}%`, String(settings.epochs), `${REFERENCE_FM10K[name]!.toFixed(2)}%`]),
  );
  const markdown = `# DiffSSL demo on the embedded Fashion-MNIST default

A demo on a subset: the first ${options.trainLimit} training images and the first ${options.testLimit} test images of FM-10k,
${options.epochs} epochs (${options.attentionEpochs} for the attention head). The reference numbers beside them are the full
protocol FM-10k (10,000 training and 10,000 test images, 28 epochs), so they are higher; \`pnpm bench:fashion\` runs the full
protocol (docs/results/fashion-mnist.md).

${table}

Checks:
${checks.map((check) => `- ${check}`).join('\n')}

Reports: ${runs.map(([name]) => `[${name}](${name}/report.md)`).join(', ')}.
`;
  await writeFile(join(options.out, 'demo.md'), markdown);
  return { reports, markdown };
}

/** `diffssl demo`: the main job on the embedded default. */
export function registerDemoCommand(program: Command): void {
  const command = program
    .command('demo')
    .description(
      "the main job on the embedded default model and data: checks the U-Net against the reference, trains pixels, GD(L) and the attention head on a subset of FM-10k, prints the accuracies beside the reference's and writes a report",
    )
    .option('--out <dir>', 'output folder (default runs/demo)', 'runs/demo')
    .option('--train-limit <N>', 'training images (default 2000)', positiveIntegerOption('--train-limit'), 2000)
    .option('--test-limit <N>', 'test images (default 2000)', positiveIntegerOption('--test-limit'), 2000)
    .option('--epochs <N>', 'epochs of pixels and GD(L) (default 28)', positiveIntegerOption('--epochs'), 28)
    .option('--attention-epochs <N>', 'epochs of the attention head (default 10)', positiveIntegerOption('--attention-epochs'), 10)
    .option('--cache <dir>', `feature cache folder (default $DIFFSSL_CACHE or ${defaultCacheDirectory()})`);
  precisionOption(command);
  runtimeOptions(command).action(
    async (flags: {
      out: string;
      trainLimit: number;
      testLimit: number;
      epochs: number;
      attentionEpochs: number;
      cache?: string;
      provider?: string;
      threads?: number;
      quiet?: boolean;
      precision?: RunOptions['precision'];
    }) => {
      const started = performance.now();
      const { markdown } = await runDemo({ ...flags, cacheDirectory: flags.cache ?? defaultCacheDirectory(), runner: runnerOf(flags), ...displayOf(flags) });
      process.stdout.write(`${markdown}\nDemo finished in ${((performance.now() - started) / 1000).toFixed(0)} s; report in ${flags.out}/demo.md\n`);
    },
  );
}
