import { ConfigError, ModuleDict, type BuildContext, type Module, type SymbolicTensor } from '@diffssl/core';
import { constantTimesteps } from '@diffssl/diffeed';
import type { DiffusionUNet, UNetWeights } from '@diffssl/unet';
import type { ClassifierInput } from '../training/classifier-graph.js';
import { noiseInput, X_START } from './diffeed-model.js';
import type { FeatureHeadClassifier, ImageInputs } from './feature-head.js';

/** A model that may fine-tune its U-Net: the weights it trains, or undefined when its U-Net is frozen. @public */
export interface FineTunable {
  /** The U-Net's weights being trained (one of the model's modules, as `unet.*`). */
  readonly unetWeights: UNetWeights | undefined;
}

/** The U-Net weights a model fine-tunes, if it does. @public */
export function finetunedWeights(model: object): UNetWeights | undefined {
  return (model as Partial<FineTunable>).unetWeights;
}

/** The name of the U-Net's weights in a fine-tuned model's state (`unet.<state_dict name>`, as the reference's model holds it). @public */
export const UNET_PREFIX = 'unet';

/** The reference's default learning rate of fine-tuning. @public */
export const FINETUNE_LEARNING_RATE = 1e-3;

/**
 * The U-Net's weights as a module named `unet`, so that a fine-tuned model's
 * state names its parameters `unet.<state_dict name>`.
 *
 * @public
 */
export function unetModule(weights: UNetWeights): ModuleDict<UNetWeights> {
  return new ModuleDict([[UNET_PREFIX, weights]]);
}

/**
 * A U-Net's weights as a trainable module (float32), refusing U-Nets that
 * cannot fine-tune.
 *
 * @throws `ConfigError` for a U-Net without trainable weights
 * @public
 */
export function trainableUNetWeights(unet: DiffusionUNet): UNetWeights {
  if (!unet.trainableWeights) throw new ConfigError('--finetune: this U-Net cannot be fine-tuned (it offers no trainable weights)');
  return unet.trainableWeights();
}

/** The image inputs of a fine-tuned model: `x_start` [C, H, W] and `noise/t{T}` per timestep. */
export function imageInputs(unet: DiffusionUNet, timesteps: readonly number[]): Map<string, ClassifierInput> {
  const { imageSize, inChannels } = unet.info;
  const image = { dtype: 'float32' as const, shape: [inChannels, imageSize, imageSize] };
  return new Map([[X_START, image], ...timesteps.map((t) => [noiseInput(t), image] as const)]);
}

/**
 * A head on a U-Net that trains with it (the reference's `--mode finetune`
 * for the `linear`, `attention` and `difformer` protocols): clean images and
 * per-timestep noise in, `q_sample`, the U-Net with trainable weights up to
 * the deepest block read (later blocks and the output layers are not built,
 * so they stay frozen), the same pooling as the frozen features, the head.
 * Its state is the head's and the U-Net's (`unet.<name>`).
 *
 * @public
 */
export class FineTunedHeadClassifier implements FineTunable {
  /** The U-Net's weights being trained. */
  readonly unetWeights: UNetWeights;
  private readonly backbone: Module;

  /**
   * @param head - the head on the U-Net (its U-Net is the one fine-tuned)
   * @throws `ConfigError` for a U-Net that cannot be fine-tuned
   */
  constructor(readonly head: FeatureHeadClassifier) {
    this.unetWeights = trainableUNetWeights(head.unet);
    this.backbone = unetModule(this.unetWeights);
  }

  /** Number of classes. */
  get numClasses(): number {
    return this.head.numClasses;
  }

  /** Timesteps read. */
  get timesteps(): readonly number[] {
    return this.head.timesteps;
  }

  /** The U-Net's weights (`unet.*`), then the head. */
  modules(): Module[] {
    return [this.backbone, ...this.head.modules()];
  }

  /** `x_start` and `noise/t{T}` per timestep. */
  inputs(): ReadonlyMap<string, ClassifierInput> {
    return imageInputs(this.head.unet, this.head.timesteps);
  }

  /** Logits from clean images and noise, each timestep for every image. */
  forward(context: BuildContext, inputs: ReadonlyMap<string, SymbolicTensor>): SymbolicTensor {
    const images = inputs.get(X_START)!;
    const timesteps = new Map(this.head.timesteps.map((t) => [t, constantTimesteps(context.graph, t, images)]));
    return this.forwardImages(context, { images, noise: new Map(this.head.timesteps.map((t) => [t, inputs.get(noiseInput(t))!])), timesteps });
  }

  /** Logits from images, noise and timesteps (the whole model, for export). */
  forwardImages(context: BuildContext, inputs: ImageInputs): SymbolicTensor {
    return this.head.forwardImages(context, inputs, this.unetWeights);
  }
}
