import type { BuildContext, Graph, SymbolicTensor } from '@diffssl/core';
import type { UNetBlock } from './layout.js';
import type { UNetWeights } from './unet-weights.js';

/** The compute precisions a U-Net builds in. @public */
export type UNetPrecision = 'float32' | 'float16' | 'int8';

/** Every {@link UNetPrecision}, in the order errors list them. @public */
export const UNET_PRECISIONS: readonly UNetPrecision[] = ['float32', 'float16', 'int8'];

/** Options of {@link DiffusionUNet.build}. @public */
export interface UNetBuildOptions {
  /** Noised images [B, in_channels, H, W], float32. */
  x: SymbolicTensor;
  /** One int64 timestep per image, [B]. */
  timesteps: SymbolicTensor;
  /** Class labels (int64 [B], each in 0..numClasses-1): required by class-conditional models, refused by unconditional ones. */
  classLabels?: SymbolicTensor;
  /** Block numbers (1..N) whose outputs to return. */
  taps: readonly number[];
  /** Also compute the final output (epsilon and variance channels). */
  output?: boolean;
  /**
   * DifFeed's feedback: encoder block number -> tensor [B, C_block, h, w]
   * added, bilinearly resized to the block's size, to that block's output
   * (what the next block and the skip connection see, and what its tap reads).
   */
  feedback?: ReadonlyMap<number, SymbolicTensor>;
  /**
   * Compute precision of the blocks (normalization statistics, embeddings and
   * the output head stay float32). `int8`: the block convolutions (and the
   * attention's 1-D convolutions) run in 8-bit integers, weights quantized per
   * output channel, activations per tensor at run time; everything else is float32.
   */
  dtype?: UNetPrecision;
  /**
   * Fine-tuning: read every weight through `context` from `weights` (made by
   * {@link DiffusionUNet.trainableWeights}, and one of the context's modules),
   * so that a training step updates them. Builds in float32 only; in `'train'`
   * mode a U-Net with dropout above 0 is refused.
   */
  trainable?: {
    /** The build context (in `'train'` mode for a training step) through which every weight is read. */
    context: BuildContext;
    /** The U-Net's weights as a module of that context. */
    weights: UNetWeights;
  };
}

/** What {@link DiffusionUNet.build} returns. @public */
export interface UNetOutputs {
  /** Block outputs by block number (float32). */
  blocks: Map<number, SymbolicTensor>;
  /** The model output [B, out_channels, H, W] when requested. */
  output?: SymbolicTensor;
}

/** The facts about a diffusion U-Net that a feature extractor needs. @public */
export interface UNetInfo {
  /** Height and width of the (square) images the model takes. */
  readonly imageSize: number;
  /** Channels of the images the model takes. */
  readonly inChannels: number;
  /** Number of diffusion steps T it was trained with. */
  readonly diffusionSteps: number;
  /** The beta schedule it was trained with. */
  readonly noiseSchedule: 'linear' | 'cosine';
  /** Number of classes of a class-conditional model; undefined for an unconditional one. */
  readonly numClasses: number | undefined;
}

/**
 * A diffusion U-Net the feature extractor can run: its numbered blocks, the
 * facts it needs, and a way to add the network (with taps, feedback and
 * labels) to a graph. {@link AdmUNet} implements it; another U-Net plugs in
 * by implementing it too.
 *
 * @public
 */
export interface DiffusionUNet {
  /** Image size, channels, schedule and classes. */
  readonly info: UNetInfo;
  /** The numbered blocks 1..N in order. */
  readonly blocks: readonly UNetBlock[];
  /**
   * Adds the network to a graph. Nothing after the deepest tap need be built
   * unless the output is requested.
   */
  build(graph: Graph, options: UNetBuildOptions): UNetOutputs;
  /**
   * Chunks that identify the model (its configuration and weights), hashed
   * into cache keys: two models with the same chunks build the same graph.
   */
  identity(): Iterable<string | Uint8Array>;
  /**
   * The weights as a trainable module in float32, for
   * {@link UNetBuildOptions.trainable} (fine-tuning). A U-Net without it
   * cannot be fine-tuned.
   */
  trainableWeights?(): UNetWeights;
}
