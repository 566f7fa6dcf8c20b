import { InvalidArgumentError, type Command } from 'commander';
import { ConfigError } from '@diffssl/core';
import { HEAD_OPTIONS } from '../heads/head-options.js';
import type { HeadOptionName } from '../heads/head-kind.js';
import { checkProtocolOptions, HEAD_KINDS, PROTOCOLS, protocolKind, takesOption, type Protocol } from '../heads/registry.js';
import { defaultCacheDirectory, runProtocol } from '../pipeline/run.js';
import {
  dataOptions,
  displayOf,
  integerListOption,
  integerOption,
  numberOption,
  positiveIntegerOption,
  precisionOption,
  runnerOf,
  runtimeOptions,
  unetOptions,
  type RuntimeFlags,
} from './options.js';
import type { DataOptions } from '../pipeline/splits.js';

interface TrainFlags extends DataOptions, RuntimeFlags {
  protocol: Protocol;
  checkpoint?: string;
  config?: string;
  blocks?: number[];
  timesteps?: number[];
  prePoolSize?: number;
  headArc?: string;
  fusionArc?: string;
  normType?: 'layer' | 'batch';
  feedbackFrom?: number[];
  feedbackArch?: string;
  epochs?: number;
  lr?: number;
  batchSize?: number;
  microBatch?: number;
  evalEvery?: number;
  momentum?: number;
  weightDecay?: number;
  lrStep?: number;
  lrGamma?: number;
  seed?: number;
  draws?: number;
  out: string;
  resume?: boolean;
  cache?: string | false;
  export?: boolean;
  finetune?: boolean;
}

/** `diffssl train`: one protocol, trained and evaluated end to end. */
export function registerTrainCommand(program: Command): void {
  const protocolHelp = HEAD_KINDS.flatMap((kind) => ('protocol' in kind ? [`${kind.name}: ${kind.summary}`] : [])).join('; ');
  const command = program
    .command('train')
    .description(`train and evaluate a protocol (${PROTOCOLS.join(', ')}) end to end; writes report.json, report.md, SVG charts, model.safetensors`)
    .requiredOption('--protocol <name>', protocolHelp, (name) => cliParse(() => protocolKind(name).name));
  unetOptions(command);
  dataOptions(command)
    .option('--blocks <list>', 'U-Net blocks read (diffeed: of the second pass), e.g. 10 or 8,9,10', integerListOption('--blocks'))
    .option('--timesteps <list>', 'timesteps, e.g. 50 or 50,150', integerListOption('--timesteps'));
  // One flag per kind-specific option of the head registry, with the protocols that take it.
  for (const [name, option] of Object.entries(HEAD_OPTIONS) as [HeadOptionName, (typeof HEAD_OPTIONS)[HeadOptionName]][]) {
    const takers = PROTOCOLS.filter((protocol) => takesOption(protocol, name));
    command.option(option.flag, `${takers.join(', ')}: ${option.help}`, (text) => cliParse(() => option.parse(text)));
  }
  command
    .option('--epochs <N>', 'epochs (default 28)', positiveIntegerOption('--epochs'))
    .option(
      '--lr <X>',
      `initial learning rate (default: ${PROTOCOLS.map((protocol) => `${protocol} ${protocolKind(protocol).protocol.learningRate}`).join(', ')}; 1e-3 with --finetune)`,
      numberOption('--lr'),
    )
    .option('--batch-size <N>', 'batch size (default 32)', positiveIntegerOption('--batch-size'))
    .option(
      '--micro-batch <N>',
      "gradient accumulation: split each batch into micro-batches of at most N examples, one SGD step per batch (default: no split; N >= --batch-size: no split; BatchNorm uses each micro-batch's statistics)",
      positiveIntegerOption('--micro-batch'),
    )
    .option('--eval-every <N>', 'evaluate every N epochs (default: after the last)', positiveIntegerOption('--eval-every'))
    .option('--momentum <X>', 'SGD momentum (default 0)', numberOption('--momentum'))
    .option('--weight-decay <X>', 'SGD weight decay (default 0)', numberOption('--weight-decay'))
    .option('--lr-step <N>', 'StepLR step in epochs (default 7)', positiveIntegerOption('--lr-step'))
    .option('--lr-gamma <X>', 'StepLR factor (default 0.1)', numberOption('--lr-gamma'))
    .option('--seed <N>', 'seed of the initialization, the data order and the noise (default 0)', integerOption('--seed'))
    .option('--draws <N>', 'noise draws per training image in the feature cache (default 1)', positiveIntegerOption('--draws'))
    .requiredOption('--out <dir>', 'output folder: report, checkpoint, weights')
    .option('--resume', 'continue a killed run from the checkpoint in --out')
    .option('--cache <dir>', `feature cache folder (default $DIFFSSL_CACHE or ${defaultCacheDirectory()})`)
    .option('--no-cache', 'recompute the U-Net features every epoch instead of caching them (frozen protocols)')
    .option('--export', 'also export the trained model as --out/model.onnx with model.json')
    .option(
      '--finetune',
      'backbone mode finetune (linear, attention, difformer, diffeed): the U-Net trains with the head, no feature cache; writes --out/unet.safetensors and unet.pt',
    );
  precisionOption(command);
  runtimeOptions(command).action(async (flags: TrainFlags) => {
    // runProtocol checks the other options; model files given on the command line must apply too.
    checkProtocolOptions(flags.protocol, { checkpoint: flags.checkpoint, config: flags.config });
    const display = displayOf(flags);
    const report = await runProtocol({
      protocol: flags.protocol,
      checkpoint: flags.checkpoint,
      config: flags.config,
      data: flags.data,
      trainLimit: flags.trainLimit,
      testLimit: flags.testLimit,
      subsetList: flags.subsetList,
      classNames: flags.classNames,
      resize: flags.resize,
      blocks: flags.blocks,
      timesteps: flags.timesteps,
      prePoolSize: flags.prePoolSize,
      headArc: flags.headArc,
      fusionArc: flags.fusionArc,
      normType: flags.normType,
      feedbackFrom: flags.feedbackFrom,
      feedbackArch: flags.feedbackArch,
      epochs: flags.epochs,
      learningRate: flags.lr,
      batchSize: flags.batchSize,
      microBatch: flags.microBatch,
      evalEvery: flags.evalEvery,
      momentum: flags.momentum,
      weightDecay: flags.weightDecay,
      lrStep: flags.lrStep,
      lrGamma: flags.lrGamma,
      seed: flags.seed,
      draws: flags.draws,
      out: flags.out,
      resume: flags.resume,
      // Only a cache flag the user gave is passed, so that protocols without a feature cache can refuse it.
      ...(command.getOptionValueSource('cache') === 'cli' ? { cache: flags.cache !== false } : {}),
      ...(typeof flags.cache === 'string' ? { cacheDirectory: flags.cache } : {}),
      exportModel: flags.export,
      finetune: flags.finetune,
      ...(flags.precision ? { precision: flags.precision } : {}),
      runner: runnerOf(flags),
      ...display,
    });
    process.stdout.write(`${flags.protocol}: top-1 ${report.top1.toFixed(2)}% of ${report.test_images} test images; report in ${flags.out}/report.md\n`);
  });
}

/** Runs a registry parser, turning its `ConfigError` into commander's one-line argument error. */
function cliParse<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ConfigError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}
