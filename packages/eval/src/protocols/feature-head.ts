import { ConfigError, type BuildContext, type Module, type SymbolicTensor } from '@diffssl/core';
import { DifFormer, fusionKey, type FusionNorm } from '@diffssl/difformer';
import { LinearHead } from '@diffssl/pool';
import type { ClassifierGraph, ClassifierInput } from '../training/classifier-graph.js';

/** Channels and size of a U-Net block's output. @public */
export interface BlockShape {
  readonly channels: number;
  readonly resolution: number;
}

/** The U-Net facts a feature head needs: each block's output shape. @public */
export interface BlockShapes {
  block(number: number): BlockShape;
}

/** The side a block's features are cached at: min(resolution, prePoolSize) (pooling again to prePoolSize is then exact). @public */
export function pooledSize(resolution: number, prePoolSize: number): number {
  return Math.min(resolution, prePoolSize);
}

/** Options of {@link FeatureHeadClassifier}. @public */
export type FeatureHeadOptions =
  | { kind: 'linear'; block: number; timestep: number; prePoolSize: number; headArc?: string; numClasses: number; seed?: number }
  | { kind: 'fusion'; blocks: readonly number[]; timesteps: readonly number[]; prePoolSize: number; fusionArc: string; normType?: FusionNorm; numClasses: number; seed?: number };

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

  /** @throws `ConfigError` for a linear head over several blocks or timesteps */
  constructor(unet: BlockShapes, options: FeatureHeadOptions) {
    this.numClasses = options.numClasses;
    this.prePoolSize = options.prePoolSize;
    if (options.kind === 'linear') {
      const shape = unet.block(options.block);
      this.head = new LinearHead({ channels: shape.channels, numClasses: options.numClasses, prePoolSize: options.prePoolSize, headArc: options.headArc ?? '', seed: options.seed ?? 0 });
      this.blocks = [options.block];
      this.timesteps = [options.timestep];
    } else {
      this.head = DifFormer.fromUNet(unet, {
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
        const { channels, resolution } = unet.block(block);
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
}
