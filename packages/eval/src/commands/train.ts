import type { Command } from 'commander';
import { parseProtocol, type Protocol } from '../protocols/protocol.js';
import { defaultCacheDirectory, runProtocol } from '../pipeline/run.js';
import { dataOptions, displayOf, integerListOption, integerOption, numberOption, positiveIntegerOption, runnerOf, runtimeOptions, unetOptions, type RuntimeFlags } from './options.js';
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
  const command = program
    .command('train')
    .description('train and evaluate a protocol (pixels, random, linear, attention, difformer, diffeed) end to end; writes report.json, report.md, SVG charts, model.safetensors')
    .requiredOption('--protocol <name>', 'linear (GD(L)), attention, difformer, diffeed, or the baselines pixels and random', parseProtocol);
  unetOptions(command);
  dataOptions(command)
    .option('--blocks <list>', 'U-Net blocks read (diffeed: of the second pass), e.g. 10 or 8,9,10', integerListOption('--blocks'))
    .option('--timesteps <list>', 'timesteps, e.g. 50 or 50,150', integerListOption('--timesteps'))
    .option('--pre-pool-size <N>', "the reference's pre_pool_size (default 2 for linear and random, 7 for the attention heads)", positiveIntegerOption('--pre-pool-size'))
    .option('--head-arc <arc>', "linear: hidden layers as the reference's head_arc, e.g. 2048_1024")
    .option('--fusion-arc <layers>', 'attention, difformer, diffeed: the attention head as a layer string')
    .option('--norm-type <layer|batch>', 'attention, difformer, diffeed: LayerNorm over [C,s,s] (default) or BatchNorm2d')
    .option('--feedback-from <list>', 'diffeed: decoder blocks that feed back (default: every other decoder block)', integerListOption('--feedback-from'))
    .option('--feedback-arch <arch>', 'diffeed: feedback network arch (default C_B_R)')
    .option('--epochs <N>', 'epochs (default 28)', positiveIntegerOption('--epochs'))
    .option('--lr <X>', 'initial learning rate (default 1e-2 for linear, random, pixels and diffeed; 5e-2 for attention and difformer; 1e-3 with --finetune)', numberOption('--lr'))
    .option('--batch-size <N>', 'batch size (default 32)', positiveIntegerOption('--batch-size'))
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
    .option('--finetune', 'backbone mode finetune (linear, attention, difformer, diffeed): the U-Net trains with the head, no feature cache; writes --out/unet.safetensors and unet.pt');
  runtimeOptions(command).action(async (flags: TrainFlags) => {
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
      evalEvery: flags.evalEvery,
      momentum: flags.momentum,
      weightDecay: flags.weightDecay,
      lrStep: flags.lrStep,
      lrGamma: flags.lrGamma,
      seed: flags.seed,
      draws: flags.draws,
      out: flags.out,
      resume: flags.resume,
      cache: flags.cache !== false,
      ...(typeof flags.cache === 'string' ? { cacheDirectory: flags.cache } : {}),
      exportModel: flags.export,
      finetune: flags.finetune,
      runner: runnerOf(flags),
      ...display,
    });
    process.stdout.write(`${flags.protocol}: top-1 ${report.top1.toFixed(2)}% of ${report.test_images} test images; report in ${flags.out}/report.md\n`);
  });
}
