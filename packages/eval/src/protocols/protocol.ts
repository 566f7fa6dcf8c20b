import { ConfigError, slice, type BuildContext, type SymbolicTensor } from '@diffssl/core';
import type { FusionNorm } from '@diffssl/difformer';
import type { DiffusionUNet } from '@diffssl/unet';
import type { ClassifierGraph } from '../training/classifier-graph.js';
import { DifFeedModel } from './diffeed-model.js';
import { FeatureHeadClassifier, type ImageInputs } from './feature-head.js';
import { FineTunedHeadClassifier } from './finetune.js';
import { PixelClassifier } from './pixels.js';

/** The evaluation protocols. @public */
export type Protocol = 'linear' | 'attention' | 'difformer' | 'diffeed' | 'pixels' | 'random';

/** Every protocol, in the order reports list them. @public */
export const PROTOCOLS: readonly Protocol[] = ['pixels', 'random', 'linear', 'attention', 'difformer', 'diffeed'];

/** The reference's defaults of each protocol: SGD learning rate and pre-pool size. @public */
export const PROTOCOL_DEFAULTS: Readonly<Record<Protocol, {
  /** Initial SGD learning rate. */
  learningRate: number;
  /** `pre_pool_size`: adaptive average pooling of each feature map to this size (0 for pixels: none). */
  prePoolSize: number;
}>> = {
  pixels: { learningRate: 1e-2, prePoolSize: 0 },
  random: { learningRate: 1e-2, prePoolSize: 2 },
  linear: { learningRate: 1e-2, prePoolSize: 2 },
  attention: { learningRate: 5e-2, prePoolSize: 7 },
  difformer: { learningRate: 5e-2, prePoolSize: 7 },
  diffeed: { learningRate: 1e-2, prePoolSize: 7 },
};

/** The attention head of the FM-10k reference runs (dim 64, 4 heads, MLP ratio 4, 2 blocks, CLS token). @public */
export const DEFAULT_FUSION_ARC = 'Use_CLS_Token:True:64,Insert_CLS_Token,Attention:64:4:4:2,Extract_CLS_Token';

/** The feedback arch of the reference runs. @public */
export const DEFAULT_FEEDBACK_ARCH = 'C_B_R';

/**
 * Checks a protocol name.
 *
 * @throws `ConfigError` listing the protocols
 * @public
 */
export function parseProtocol(name: string): Protocol {
  if (!(PROTOCOLS as readonly string[]).includes(name)) throw new ConfigError(`--protocol: expected one of ${PROTOCOLS.join(', ')}; found '${name}'`);
  return name as Protocol;
}

/** Everything that defines a protocol's model (the reference's settings). @public */
export interface ProtocolSettings {
  /** The protocol. */
  protocol: Protocol;
  /** Blocks read (linear/random: one; attention: one; difformer: several; diffeed: the second-pass blocks the head reads). */
  blocks: readonly number[];
  /** Timesteps (linear/random/attention: one). */
  timesteps: readonly number[];
  /** Number of classes. */
  numClasses: number;
  /** `pre_pool_size` (default: {@link PROTOCOL_DEFAULTS}). */
  prePoolSize?: number;
  /** `head_arc` of the linear head (default ''). */
  headArc?: string;
  /** The attention head's layer string (default {@link DEFAULT_FUSION_ARC}). */
  fusionArc?: string;
  /** DifFormer's norm (default 'layer'). */
  normType?: FusionNorm;
  /** DifFeed: decoder blocks that feed back (default: {@link defaultFeedbackFrom}). */
  feedbackFrom?: readonly number[];
  /** DifFeed: feedback arch (default {@link DEFAULT_FEEDBACK_ARCH}). */
  feedbackArch?: string;
  /** Initialization seed of the head (default 0). */
  seed?: number;
  /**
   * Backbone mode `finetune` (default false: `freeze`): the U-Net's weights
   * train with the head (linear, attention, difformer, diffeed), one SGD
   * optimizer; the model reads images and noise, never cached features.
   */
  finetune?: boolean;
}

/**
 * DifFeed's default feedback sources: every other decoder block from the one
 * after the middle block, up to two before the last (for the 19-block
 * Fashion-MNIST U-Net: 11, 13, 15, 17 into 9, 7, 5, 3, as in the reference
 * runs). The paper's 256x256 setting (21, 24, ..., 36) is given explicitly.
 *
 * @public
 */
export function defaultFeedbackFrom(unet: Pick<DiffusionUNet, 'blocks'>): number[] {
  const middle = unet.blocks.findIndex((block) => block.part === 'middle') + 1;
  const out: number[] = [];
  for (let block = middle + 1; block <= unet.blocks.length - 2; block += 2) out.push(block);
  return out;
}

/** A protocol's classifier, which also builds from images (for export and the image pipeline). @public */
export interface ProtocolModel extends ClassifierGraph {
  /** Logits from clean images, per-timestep noise and timesteps (the standalone model). */
  forwardImages(context: BuildContext, inputs: ImageInputs): SymbolicTensor;
  /** Timesteps the model reads (none for pixels). */
  readonly timesteps: readonly number[];
}

/**
 * Whether a protocol trains on frozen (cacheable) features: `linear`,
 * `random`, `attention` and `difformer`, unless the U-Net is fine-tuned.
 *
 * @param finetune - the backbone mode is `finetune` (default false)
 * @public
 */
export function readsFrozenFeatures(protocol: Protocol, finetune = false): boolean {
  return !finetune && (protocol === 'linear' || protocol === 'random' || protocol === 'attention' || protocol === 'difformer');
}

/**
 * Builds a protocol's model.
 *
 * @param settings - the protocol settings
 * @param unet - the U-Net (the random baseline's is freshly initialized; unused for pixels)
 * @param imageShape - [C, H, W] of the raw images (pixels)
 * @throws `ConfigError` for settings the protocol cannot take
 * @public
 */
export function createProtocolModel(settings: ProtocolSettings, unet: DiffusionUNet | undefined, imageShape?: readonly [number, number, number]): ProtocolModel {
  const { protocol, blocks, timesteps, numClasses } = settings;
  const prePoolSize = settings.prePoolSize ?? PROTOCOL_DEFAULTS[protocol].prePoolSize;
  const seed = settings.seed ?? 0;
  if (settings.finetune && (protocol === 'pixels' || protocol === 'random')) throw new ConfigError(`--finetune: ${protocol} has no U-Net to fine-tune; fine-tuning works with linear, attention, difformer and diffeed`);
  if (protocol === 'pixels') {
    if (!imageShape) throw new ConfigError('pixels: the raw-pixel baseline needs the image shape');
    const model = new PixelClassifier(imageShape, numClasses, seed);
    return Object.assign(model, {
      timesteps: [] as number[],
      forwardImages: (context: BuildContext, inputs: ImageInputs) => {
        const images = imageShape[0] === 1 && inputs.images.shape[1] !== 1 ? slice(inputs.images, [0], [1], [1]) : inputs.images;
        return model.head.forward(context, images);
      },
    });
  }
  if (!unet) throw new ConfigError(`${protocol}: needs a U-Net (--checkpoint and --config)`);
  if (blocks.length === 0) throw new ConfigError(`${protocol}: expected at least one block (--blocks); found none`);
  if (timesteps.length === 0) throw new ConfigError(`${protocol}: expected at least one timestep (--timesteps); found none`);
  if (unet.info.numClasses !== undefined) throw new ConfigError(`${protocol}: the U-Net is class-conditional (class_cond); the evaluation protocols read unconditional U-Nets`);
  const single = (what: string) => {
    if (blocks.length !== 1 || timesteps.length !== 1) throw new ConfigError(`${protocol}: ${what} reads one block at one timestep; found blocks [${blocks.join(', ')}] and timesteps [${timesteps.join(', ')}] (use difformer to fuse several)`);
  };
  const finetuned = (head: FeatureHeadClassifier): ProtocolModel => (settings.finetune ? new FineTunedHeadClassifier(head) : head);
  switch (protocol) {
    case 'linear':
    case 'random':
      single('GD(L)');
      return finetuned(new FeatureHeadClassifier(unet, { kind: 'linear', block: blocks[0]!, timestep: timesteps[0]!, prePoolSize, headArc: settings.headArc ?? '', numClasses, seed }));
    case 'attention':
    case 'difformer':
      if (protocol === 'attention') single('the attention head');
      return finetuned(new FeatureHeadClassifier(unet, { kind: 'fusion', blocks, timesteps, prePoolSize, fusionArc: settings.fusionArc ?? DEFAULT_FUSION_ARC, normType: settings.normType ?? 'layer', numClasses, seed }));
    case 'diffeed':
      return new DifFeedModel(unet, {
        feedbackFrom: settings.feedbackFrom ?? defaultFeedbackFrom(unet),
        arch: settings.feedbackArch ?? DEFAULT_FEEDBACK_ARCH,
        secondPassBlocks: blocks,
        timesteps,
        fusionArc: settings.fusionArc ?? DEFAULT_FUSION_ARC,
        normType: settings.normType ?? 'layer',
        prePoolSize,
        numClasses,
        seed,
        finetune: settings.finetune ?? false,
      });
  }
}
