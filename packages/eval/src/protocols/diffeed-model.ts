import { ConfigError, type BuildContext, type Module, type SymbolicTensor } from '@diffssl/core';
import { DifFeed, DifFeedClassifier } from '@diffssl/diffeed';
import { DifFormer, type FusionNorm } from '@diffssl/difformer';
import type { DiffusionUNet, UNetWeights } from '@diffssl/unet';
import { trainableUNetWeights, unetModule } from './finetune.js';
import type { ClassifierGraph, ClassifierInput } from '../training/classifier-graph.js';
import type { ImageInputs } from './feature-head.js';

/** The input name of the clean images of DifFeed. */
export const X_START = 'x_start';
/** The input name of the noise of one timestep (`noise/t50`). */
export const noiseInput = (timestep: number): string => `noise/t${timestep}`;

/** Options of {@link DifFeedModel}. @public */
export interface DifFeedModelOptions {
  /** Decoder blocks that feed back. */
  feedbackFrom: readonly number[];
  /** Feedback arch string (`C_B_R`). */
  arch: string;
  /** Blocks the head reads from the first pass (default none). */
  firstPassBlocks?: readonly number[];
  /** Blocks the head reads from the second pass. */
  secondPassBlocks: readonly number[];
  /** Timesteps. */
  timesteps: readonly number[];
  /** The head's layer string. */
  fusionArc: string;
  /** The head's norm. */
  normType?: FusionNorm;
  /** The head's pooling. */
  prePoolSize: number;
  /** Classes. */
  numClasses: number;
  /** Initialization seed. */
  seed?: number;
  /** Fine-tune the U-Net with the feedback networks and the head (default false: frozen). */
  finetune?: boolean;
}

/**
 * The `diffeed` protocol as a classifier: clean images and per-timestep
 * noise in, the two-pass model (feedback networks and a DifFormer head) to
 * logits. It cannot read cached features: its first pass feeds trainable
 * layers, so the U-Net runs on every step.
 *
 * @public
 */
export class DifFeedModel implements ClassifierGraph {
  /** The feedback networks and the head. */
  readonly classifier: DifFeedClassifier;
  /** Number of classes. */
  readonly numClasses: number;
  /** Timesteps read. */
  readonly timesteps: readonly number[];
  /** The U-Net's weights when it is fine-tuned. */
  readonly unetWeights: UNetWeights | undefined;
  private readonly backbone: Module | undefined;

  /** @throws `ConfigError` for bad blocks or arch */
  constructor(
    /** The frozen U-Net, run twice (plain, then with feedback). */
    readonly unet: DiffusionUNet,
    options: DifFeedModelOptions,
  ) {
    if (options.secondPassBlocks.length === 0) throw new ConfigError('diffeed: the head must read at least one second-pass block (--blocks)');
    this.numClasses = options.numClasses;
    this.timesteps = [...options.timesteps];
    const seed = options.seed ?? 0;
    const difFeed = new DifFeed({ unet, feedbackFrom: options.feedbackFrom, arch: options.arch, seed });
    const shapes = {
      block: (n: number) =>
        unet.blocks[n - 1] ??
        (() => {
          throw new ConfigError(`diffeed: block ${n} is outside 1..${unet.blocks.length}`);
        })(),
    };
    const head = DifFormer.fromUNet(shapes, {
      firstPassBlocks: options.firstPassBlocks ?? [],
      secondPassBlocks: options.secondPassBlocks,
      timesteps: options.timesteps,
      fusion: options.fusionArc,
      normType: options.normType ?? 'layer',
      prePoolSize: options.prePoolSize,
      numClasses: options.numClasses,
      seed: seed + 1,
    });
    this.classifier = new DifFeedClassifier(difFeed, head);
    this.unetWeights = options.finetune ? trainableUNetWeights(unet) : undefined;
    this.backbone = this.unetWeights ? unetModule(this.unetWeights) : undefined;
  }

  /** The feedback networks and the head (and, fine-tuning, the U-Net's weights first, as `unet.*`). */
  modules(): Module[] {
    return [...(this.backbone ? [this.backbone] : []), ...this.classifier.modules()];
  }

  /** `x_start` [C, H, W] and `noise/t{T}` per timestep. */
  inputs(): ReadonlyMap<string, ClassifierInput> {
    const { imageSize, inChannels } = this.unet.info;
    const image = { dtype: 'float32' as const, shape: [inChannels, imageSize, imageSize] };
    return new Map([[X_START, image], ...this.timesteps.map((t) => [noiseInput(t), image] as const)]);
  }

  /** Logits of the two-pass model. */
  forward(context: BuildContext, inputs: ReadonlyMap<string, SymbolicTensor>): SymbolicTensor {
    return this.classifier.forward(context, {
      xStart: inputs.get(X_START)!,
      noise: new Map(this.timesteps.map((t) => [t, inputs.get(noiseInput(t))!])),
      unetWeights: this.unetWeights,
    });
  }

  /** Logits from images (the whole model, for export). */
  forwardImages(context: BuildContext, inputs: ImageInputs): SymbolicTensor {
    return this.classifier.forward(context, { xStart: inputs.images, noise: inputs.noise, timesteps: inputs.timesteps, unetWeights: this.unetWeights });
  }
}
