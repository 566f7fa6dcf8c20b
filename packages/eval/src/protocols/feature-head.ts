import { adaptiveAvgPool2d, ConfigError, type BuildContext, type Module, type SymbolicTensor } from '@diffssl/core';
import { noiseSchedule, qSampleGraph, type DiffusionUNet, type UNetWeights } from '@diffssl/unet';
import { DifFormer, fusionKey, type BlockMetadataSource } from '@diffssl/difformer';
import type { ClassifierGraph, ClassifierInput } from '../training/classifier-graph.js';

/** Channels and size of a U-Net block's output. @public */
export interface BlockShape {
  /** Channels of the block's output. */
  readonly channels: number;
  /** Spatial size of the block's output (square). */
  readonly resolution: number;
}

/** Image-level inputs of a classifier: clean images, and per timestep the noise and the int64 [B] timesteps. @public */
export interface ImageInputs {
  /** Clean images [B, C, H, W] in [-1, 1]. */
  images: SymbolicTensor;
  /** Gaussian noise [B, C, H, W] per timestep the model reads. */
  noise: ReadonlyMap<number, SymbolicTensor>;
  /** int64 [B] timesteps to run each of the model's timesteps at. */
  timesteps: ReadonlyMap<number, SymbolicTensor>;
}

/** The side a block's features are cached at: min(resolution, prePoolSize) (pooling again to prePoolSize is then exact). @public */
export function pooledSize(resolution: number, prePoolSize: number): number {
  return Math.min(resolution, prePoolSize);
}

/**
 * A head on block features: its module, and its logits from features keyed
 * `t{T}/block{NN}` (`fusionKey`).
 *
 * @public
 */
export interface FeatureHead {
  /** The module whose tensors are the head (the reference's names). */
  readonly module: Module;
  /** Logits from the features it reads. */
  forward(context: BuildContext, features: ReadonlyMap<string, SymbolicTensor>): SymbolicTensor;
}

/** Options of {@link FeatureHeadClassifier}. @public */
export interface FeatureHeadOptions {
  /** The blocks read. */
  blocks: readonly number[];
  /** The timesteps read. */
  timesteps: readonly number[];
  /** Adaptive average pooling of each feature map to this size (the features are cached at min(resolution, prePoolSize)). */
  prePoolSize: number;
  /** Number of classes. */
  numClasses: number;
  /** Builds the head from the channels and (pooled) sizes of the blocks it reads. */
  createHead(blocks: BlockMetadataSource): FeatureHead;
}

/**
 * A head on frozen U-Net features (protocols `linear`, `random`, `attention`,
 * `difformer`): its inputs are block features `t{T}/block{NN}` pooled to
 * min(resolution, prePoolSize), exactly what the head would compute from the
 * full maps, so features can be cached pooled.
 *
 * @public
 */
export class FeatureHeadClassifier implements ClassifierGraph {
  /** The head's module (for example a `LinearHead` or a `DifFormer`). */
  readonly head: Module;
  /** Number of classes. */
  readonly numClasses: number;
  /** The features read, with their pooled shapes [C, s, s]. */
  readonly features: ReadonlyMap<string, readonly [number, number, number]>;
  /** Blocks read. */
  readonly blocks: readonly number[];
  /** Timesteps read. */
  readonly timesteps: readonly number[];
  /** The pooling side of the cache. */
  readonly prePoolSize: number;
  private readonly built: FeatureHead;

  /**
   * @param unet - the frozen U-Net the features come from (its block metadata sizes the head)
   * @param options - the blocks, timesteps and pooling read, and the head
   * @throws `ConfigError` for blocks outside the U-Net
   */
  constructor(
    readonly unet: DiffusionUNet,
    options: FeatureHeadOptions,
  ) {
    const blockShape = (number: number): BlockShape => {
      const block = unet.blocks[number - 1];
      if (!block) throw new ConfigError(`feature head: block ${number} is outside 1..${unet.blocks.length}`);
      return block;
    };
    // The head reads features pooled to min(resolution, prePoolSize), as they are cached; its own pooling to
    // that size is then the identity, so it computes exactly what it would from the full maps.
    const shapes = {
      block: (number: number): BlockShape => ({
        channels: blockShape(number).channels,
        resolution: pooledSize(blockShape(number).resolution, options.prePoolSize),
      }),
    };
    this.numClasses = options.numClasses;
    this.prePoolSize = options.prePoolSize;
    this.blocks = [...options.blocks];
    this.timesteps = [...options.timesteps];
    this.built = options.createHead(shapes);
    this.head = this.built.module;
    const features = new Map<string, readonly [number, number, number]>();
    for (const t of this.timesteps) {
      for (const block of this.blocks) {
        const { channels, resolution } = blockShape(block);
        const side = pooledSize(resolution, options.prePoolSize);
        features.set(fusionKey(t, block), [channels, side, side]);
      }
    }
    this.features = features;
    if (this.head instanceof DifFormer && this.head.featureKeys().some((key) => !features.has(key)))
      throw new ConfigError('feature head: the fusion reads features that are not extracted');
  }

  /** The head. */
  modules(): Module[] {
    return [this.head];
  }

  /** The pooled features. */
  inputs(): ReadonlyMap<string, ClassifierInput> {
    return new Map([...this.features].map(([name, shape]) => [name, { dtype: 'float32' as const, shape }]));
  }

  /** Logits from pooled features. */
  forward(context: BuildContext, inputs: ReadonlyMap<string, SymbolicTensor>): SymbolicTensor {
    return this.built.forward(context, inputs);
  }

  /**
   * Logits from images: `q_sample` at each timestep, the frozen U-Net up to
   * the deepest block read, the same pooling as the cached features, and the
   * head (the whole model, for export).
   *
   * @param weights - fine-tuning: the U-Net's weights, read through the context (one of its modules)
   */
  forwardImages(context: BuildContext, inputs: ImageInputs, weights?: UNetWeights): SymbolicTensor {
    const { noiseSchedule: schedule, diffusionSteps } = this.unet.info;
    const table = noiseSchedule(schedule, diffusionSteps);
    const features = new Map<string, SymbolicTensor>();
    for (const t of this.timesteps) {
      const timesteps = inputs.timesteps.get(t)!;
      const xt = qSampleGraph(table, inputs.images, inputs.noise.get(t)!, timesteps);
      const { blocks } = this.unet.build(context.graph, { x: xt, timesteps, taps: this.blocks, ...(weights ? { trainable: { context, weights } } : {}) });
      for (const [block, tensor] of blocks) {
        const [, side] = this.features.get(fusionKey(t, block))!;
        features.set(fusionKey(t, block), side! < (tensor.shape[2] as number) ? adaptiveAvgPool2d(tensor, side!) : tensor);
      }
    }
    return this.forward(context, features);
  }
}
