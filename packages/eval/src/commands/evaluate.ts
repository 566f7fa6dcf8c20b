import { join } from 'node:path';
import type { Command } from 'commander';
import { defaultCacheDirectory } from '../pipeline/run.js';
import { evaluateSavedModel } from '../pipeline/saved-model.js';
import { reportFieldsFromMetrics, writeRunReport } from '../report/run-report.js';
import { dataOptions, displayOf, positiveIntegerOption, runnerOf, runtimeOptions } from './options.js';

/** `diffssl eval`: a trained model scored on every test image. */
export function registerEvalCommand(program: Command): void {
  const command = program
    .command('eval')
    .description('evaluate a trained model (the --out folder of diffssl train) on every test image of its data, or of other data with the same classes')
    .requiredOption('--model <dir>', 'the folder diffssl train wrote (or its model.safetensors)');
  dataOptions(command, { required: false })
    .option('--batch-size <N>', 'batch size (default 32)', positiveIntegerOption('--batch-size'))
    .option('--cache <dir>', `feature cache folder (default $DIFFSSL_CACHE or ${defaultCacheDirectory()})`)
    .option('--out <dir>', 'where to write the report (default <model>/eval)');
  runtimeOptions(command).action(
    async (flags: {
      model: string;
      data?: string;
      testLimit?: number;
      classNames?: readonly string[];
      batchSize?: number;
      cache?: string;
      out?: string;
      provider?: string;
      threads?: number;
      quiet?: boolean;
    }) => {
      const display = displayOf(flags);
      const { metrics, saved } = await evaluateSavedModel({
        model: flags.model,
        ...(flags.data ? { data: { data: flags.data, ...(flags.testLimit ? { testLimit: flags.testLimit } : {}) } } : {}),
        cacheDirectory: flags.cache ?? defaultCacheDirectory(),
        batchSize: flags.batchSize,
        runner: runnerOf(flags),
        ...display,
      });
      const out = flags.out ?? join(flags.model.endsWith('.safetensors') ? join(flags.model, '..') : flags.model, 'eval');
      await writeRunReport(out, {
        protocol: saved.settings.model.protocol,
        ...reportFieldsFromMetrics(metrics),
        epochs: [],
        class_names: saved.settings.classNames,
        settings: { model: flags.model, data: flags.data ?? saved.settings.data.data },
      });
      process.stdout.write(`${saved.settings.model.protocol}: top-1 ${metrics.top1.toFixed(2)}% of ${metrics.count} test images; report in ${out}/report.md\n`);
    },
  );
}
