import { ConfigError } from '@diffssl/core';
import type { Command } from 'commander';
import { parseShard } from '../cache/format.js';
import { extractFeatures } from '../pipeline/extract.js';
import { defaultCacheDirectory } from '../pipeline/run.js';
import {
  dataOptions,
  displayOf,
  integerListOption,
  integerOption,
  positiveIntegerOption,
  precisionOption,
  runnerOf,
  runtimeOptions,
  type RuntimeFlags,
} from './options.js';
import type { DataOptions } from '../pipeline/splits.js';

/** `diffssl extract`: U-Net features into the feature cache, whole, one shard, or merged. */
export function registerExtractCommand(program: Command): void {
  const command = program
    .command('extract')
    .description('extract U-Net features into the feature cache: whole splits, one shard (--shard k/n) or the merge of the shards (--merge)')
    .requiredOption('--checkpoint <file>', 'U-Net weights: .pt/.pth (torch zip) or .safetensors')
    .requiredOption('--config <flags.json|preset>', 'guided-diffusion flags (a JSON file) or a preset name');
  dataOptions(command)
    .requiredOption('--blocks <list>', 'blocks, e.g. 19,24,30', integerListOption('--blocks'))
    .requiredOption('--timesteps <list>', 'timesteps, e.g. 90,150,300', integerListOption('--timesteps'))
    .option('--pre-pool-size <N>', "pool each block to at most N x N, the head's pre_pool_size (default 7)", positiveIntegerOption('--pre-pool-size'), 7)
    .option('--draws <N>', 'noise draws per training image (default 1)', positiveIntegerOption('--draws'))
    .option('--seed <N>', 'noise seed (default 0)', integerOption('--seed'))
    .option('--split <train|test|both>', 'which splits (default both)', 'both')
    .option('--cache <dir>', `feature cache folder (default $DIFFSSL_CACHE or ${defaultCacheDirectory()})`)
    .option('--shard <k/n>', 'write only shard k of n (k from 0), e.g. $JOB_COMPLETION_INDEX/8 or $SLURM_ARRAY_TASK_ID/8', parseShard)
    .option('--merge', 'join the shards written by --shard runs with the same options into the cache entry')
    .option('--batch-size <N>', 'images per session run (default 32)', positiveIntegerOption('--batch-size'));
  precisionOption(command);
  runtimeOptions(command).action(
    async (
      flags: DataOptions &
        RuntimeFlags & {
          checkpoint: string;
          config: string;
          blocks: number[];
          timesteps: number[];
          prePoolSize: number;
          draws?: number;
          seed?: number;
          split: string;
          cache?: string;
          shard?: { index: number; count: number };
          merge?: boolean;
          batchSize?: number;
        },
    ) => {
      if (flags.split !== 'train' && flags.split !== 'test' && flags.split !== 'both')
        throw new ConfigError(`--split: expected train, test or both; found '${flags.split}'`);
      const written = await extractFeatures({
        ...flags,
        split: flags.split,
        pool: flags.prePoolSize,
        cacheDirectory: flags.cache ?? defaultCacheDirectory(),
        runner: runnerOf(flags),
        ...displayOf(flags),
      });
      for (const [split, directory] of Object.entries(written)) process.stdout.write(`${split}: ${directory}\n`);
    },
  );
}
