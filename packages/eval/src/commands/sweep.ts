import type { Command } from 'commander';
import { defaultCacheDirectory } from '../pipeline/run.js';
import { runSweep, type Scorer } from '../pipeline/sweep.js';
import {
  dataOptions,
  parseScorer,
  displayOf,
  integerListOption,
  integerOption,
  numberOption,
  positiveIntegerOption,
  precisionOption,
  runnerOf,
  runtimeOptions,
  type RuntimeFlags,
} from './options.js';
import type { DataOptions } from '../pipeline/splits.js';

/** `diffssl sweep`: a block x timestep grid with its heatmap. */
export function registerSweepCommand(program: Command): void {
  const command = program
    .command('sweep')
    .description('score a block x timestep grid (GD(L), ridge or kNN on cached pooled features); writes sweep.json, sweep.md and the sweep.svg heatmap')
    .requiredOption('--checkpoint <file>', 'U-Net weights')
    .requiredOption('--config <flags.json|preset>', 'guided-diffusion flags (a JSON file) or a preset name');
  dataOptions(command)
    .option('--blocks <list>', 'blocks (default: all)', integerListOption('--blocks'))
    .requiredOption('--timesteps <list>', 'timesteps, e.g. 10,50,150', integerListOption('--timesteps'))
    .option('--scorer <linear|ridge|knn>', 'GD(L) trained as the reference (default), closed-form ridge, or cosine kNN', parseScorer, 'linear')
    .option('--pre-pool-size <N>', 'pool each block to at most N x N (default 2, GD(L))', positiveIntegerOption('--pre-pool-size'))
    .option('--epochs <N>', 'GD(L) epochs (default 28)', positiveIntegerOption('--epochs'))
    .option('--lr <X>', 'GD(L) learning rate (default 1e-2)', numberOption('--lr'))
    .option('--k <N>', 'kNN neighbours (default 20)', positiveIntegerOption('--k'))
    .option('--lambda <X>', 'ridge penalty relative to the mean squared feature', numberOption('--lambda'))
    .option('--seed <N>', 'seed (default 0)', integerOption('--seed'))
    .option('--cache <dir>', `feature cache folder (default $DIFFSSL_CACHE or ${defaultCacheDirectory()})`)
    .requiredOption('--out <dir>', 'output folder');
  precisionOption(command);
  runtimeOptions(command).action(
    async (
      flags: DataOptions &
        RuntimeFlags & {
          checkpoint: string;
          config: string;
          blocks?: number[];
          timesteps: number[];
          scorer: Scorer;
          prePoolSize?: number;
          epochs?: number;
          lr?: number;
          k?: number;
          lambda?: number;
          seed?: number;
          cache?: string;
          out: string;
        },
    ) => {
      const sweep = await runSweep({
        ...flags,
        learningRate: flags.lr,
        cacheDirectory: flags.cache ?? defaultCacheDirectory(),
        runner: runnerOf(flags),
        ...displayOf(flags),
      });
      process.stdout.write(
        `best: block ${sweep.best!.block} at t=${sweep.best!.timestep}, ${sweep.best!.top1.toFixed(2)}%; heatmap in ${flags.out}/sweep.svg\n`,
      );
    },
  );
}
