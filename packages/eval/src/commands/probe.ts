import type { Command } from 'commander';
import { linearHeadKind } from '../heads/kinds/linear.js';
import { defaultCacheDirectory } from '../pipeline/run.js';
import { cachedFeatures, openSplits } from '../pipeline/splits.js';
import { scoreCell, type Scorer } from '../pipeline/sweep.js';
import { loadUNet, unetLoadDisplay } from '../pipeline/unet-source.js';
import { reportFieldsFromMetrics, writeRunReport } from '../report/run-report.js';
import {
  dataOptions,
  parseScorer,
  displayOf,
  integerOption,
  numberOption,
  positiveIntegerOption,
  runnerOf,
  runtimeOptions,
  type RuntimeFlags,
} from './options.js';
import type { DataOptions } from '../pipeline/splits.js';

/** `diffssl probe`: a quick kNN or ridge probe of one block at one timestep. */
export function registerProbeCommand(program: Command): void {
  const command = program
    .command('probe')
    .description('a quick probe of one block at one timestep: cosine kNN or closed-form ridge on cached pooled features')
    .requiredOption('--checkpoint <file>', 'U-Net weights')
    .requiredOption('--config <flags.json|preset>', 'guided-diffusion flags (a JSON file) or a preset name');
  dataOptions(command)
    .requiredOption('--block <N>', 'the block', positiveIntegerOption('--block'))
    .requiredOption('--timestep <N>', 'the timestep', integerOption('--timestep'))
    .option('--scorer <ridge|knn|linear>', 'ridge (default), knn, or GD(L)', parseScorer, 'ridge')
    .option('--pre-pool-size <N>', 'pool the block to at most N x N (default 2)', positiveIntegerOption('--pre-pool-size'))
    .option('--k <N>', 'kNN neighbours (default 20)', positiveIntegerOption('--k'))
    .option('--lambda <X>', 'ridge penalty relative to the mean squared feature', numberOption('--lambda'))
    .option('--seed <N>', 'noise seed (default 0)', integerOption('--seed'))
    .option('--cache <dir>', `feature cache folder (default $DIFFSSL_CACHE or ${defaultCacheDirectory()})`)
    .requiredOption('--out <dir>', 'output folder for report.json and report.md');
  runtimeOptions(command).action(
    async (
      flags: DataOptions &
        RuntimeFlags & {
          checkpoint: string;
          config: string;
          block: number;
          timestep: number;
          scorer: Scorer;
          prePoolSize?: number;
          k?: number;
          lambda?: number;
          seed?: number;
          cache?: string;
          out: string;
        },
    ) => {
      const display = displayOf(flags);
      const started = performance.now();
      const splits = await openSplits(flags);
      const unet = await loadUNet({ checkpoint: flags.checkpoint, config: flags.config, onProgress: unetLoadDisplay(display.progress) });
      const prePoolSize = flags.prePoolSize ?? linearHeadKind.protocol.prePoolSize;
      const caches = await cachedFeatures({
        ...flags,
        unet,
        splits,
        blocks: [flags.block],
        timesteps: [flags.timestep],
        pool: prePoolSize,
        noiseSeed: flags.seed ?? 0,
        root: flags.cache ?? defaultCacheDirectory(),
        runner: runnerOf(flags),
        ...display,
      });
      try {
        const metrics = await scoreCell({
          scorer: flags.scorer,
          unet,
          splits,
          caches,
          block: flags.block,
          timestep: flags.timestep,
          prePoolSize,
          k: flags.k,
          lambda: flags.lambda,
          seed: flags.seed,
          runner: runnerOf(flags),
        });
        await writeRunReport(flags.out, {
          protocol: flags.scorer,
          ...reportFieldsFromMetrics(metrics),
          epochs: [],
          train_images: splits.train.length,
          class_names: [...splits.train.classes],
          wall_seconds: (performance.now() - started) / 1000,
          settings: { block: flags.block, timestep: flags.timestep, prePoolSize, scorer: flags.scorer },
        });
        process.stdout.write(
          `${flags.scorer} probe of block ${flags.block} at t=${flags.timestep}: top-1 ${metrics.top1.toFixed(2)}% of ${metrics.count} test images\n`,
        );
      } finally {
        await caches.train.close();
        await caches.test.close();
      }
    },
  );
}
