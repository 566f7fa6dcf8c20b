import { adaptiveAvgPool2d, ConfigError, type BuildContext, type Module, type SymbolicTensor } from '@diffssl/core';
import { noiseSchedule, qSampleGraph, type DiffusionUNet, type UNetWeights } from '@diffssl/unet';
import { DifFormer, fusionKey, type FusionNorm } from '@diffssl/difformer';
import { LinearHead } from '@diffssl/pool';
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

/** Options of {@link FeatureHeadClassifier}. @public */
export type FeatureHeadOptions =
  | {
      /** The linear GD(L) head on one block at one timestep. */
      kind: 'linear';
      /** The block read. */
      block: number;
      /** The timestep read. */
      timestep: number;
      /** Adaptive average pooling of the feature map to this size. */
      prePoolSize: number;
      /** Hidden layers before the classifier (`head_arc`, default ''). */
      headArc?: string;
      /** Number of classes. */
      numClasses: number;
      /** Initialization seed (default 0). */
      seed?: number;
    }
  | {
      /** An attention head (one block and timestep) or DifFormer (several). */
      kind: 'fusion';
      /** The blocks read. */
      blocks: readonly number[];
      /** The timesteps read. */
      timesteps: readonly number[];
      /** Adaptive average pooling of each feature map to this size. */
      prePoolSize: number;
      /** The attention head's layer string. */
      fusionArc: string;
      /** How each block's pooled map is normalized (default `'layer'`). */
      normType?: FusionNorm;
      /** Number of classes. */
      numClasses: number;
      /** Initialization seed (default 0). */
      seed?: number;
    };

/**
 * A head on frozen U-Net features (protocols `linear`, `random`, `attention`,
 * `difformer`): its inputs are block features `t{T}/block{NN}` pooled to
 * min(resolution, prePoolSize), exactly what the head would compute from the
 * full maps, so features can be cached pooled.
 *
 * @public
 */
export class FeatureHeadClassifier implements ClassifierGraph {
  /** The head (a {@link LinearHead} or a {@link DifFormer}). */
  readonly head: LinearHead | DifFormer;
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

  /**
   * @param unet - the frozen U-Net the features come from (its block metadata sizes the head)
   * @param options - the head
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
    const shapes = { block: (number: number): BlockShape => ({ channels: blockShape(number).channels, resolution: pooledSize(blockShape(number).resolution, options.prePoolSize) }) };
    this.numClasses = options.numClasses;
    this.prePoolSize = options.prePoolSize;
    if (options.kind === 'linear') {
      const shape = blockShape(options.block);
      this.head = new LinearHead({ channels: shape.channels, numClasses: options.numClasses, prePoolSize: options.prePoolSize, headArc: options.headArc ?? '', seed: options.seed ?? 0 });
      this.blocks = [options.block];
      this.timesteps = [options.timestep];
    } else {
      this.head = DifFormer.fromUNet(shapes, {
        firstPassBlocks: options.blocks,
        timesteps: options.timesteps,
        fusion: options.fusionArc,
        normType: options.normType ?? 'layer',
        prePoolSize: options.prePoolSize,
        numClasses: options.numClasses,
        seed: options.seed ?? 0,
      });
      this.blocks = [...options.blocks];
      this.timesteps = [...options.timesteps];
    }
    const features = new Map<string, readonly [number, number, number]>();
    for (const t of this.timesteps) {
      for (const block of this.blocks) {
        const { channels, resolution } = blockShape(block);
        const side = pooledSize(resolution, options.prePoolSize);
        features.set(fusionKey(t, block), [channels, side, side]);
      }
    }
    this.features = features;
    if (this.head instanceof DifFormer && this.head.featureKeys().some((key) => !features.has(key))) throw new ConfigError('feature head: the fusion reads features that are not extracted');
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
    if (this.head instanceof LinearHead) return this.head.forward(context, inputs.get(fusionKey(this.timesteps[0]!, this.blocks[0]!))!);
    return this.head.forward(context, inputs);
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
