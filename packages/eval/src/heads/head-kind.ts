import type { BuildContext, HostTensor, Module, SymbolicTensor } from '@diffssl/core';
import type { FusionNorm } from '@diffssl/difformer';
import type { DiffusionUNet } from '@diffssl/unet';
import type { ImageInputs } from '../protocols/feature-head.js';
import type { ClassifierGraph } from '../training/classifier-graph.js';
import type { Protocol } from './registry.js';

/**
 * The options a head kind may take beyond the common ones (blocks, timesteps,
 * training): each is one `diffssl train` flag (see `HEAD_OPTIONS`).
 *
 * @public
 */
export type HeadOptionName = 'prePoolSize' | 'headArc' | 'fusionArc' | 'normType' | 'feedbackFrom' | 'feedbackArch';

/** Everything that defines a protocol's model (the reference's settings). @public */
export interface ProtocolSettings {
  /** The protocol: a head kind of the registry that trains as a protocol. */
  protocol: Protocol;
  /** Blocks read (linear/random/attention: one; difformer: several; diffeed: the second-pass blocks the head reads). */
  blocks: readonly number[];
  /** Timesteps (linear/random/attention: one). */
  timesteps: readonly number[];
  /** Number of classes. */
  numClasses: number;
  /** `pre_pool_size` (default: the kind's). */
  prePoolSize?: number;
  /** `head_arc` of the linear head (default ''). */
  headArc?: string;
  /** The attention head's layer string (default `DEFAULT_FUSION_ARC`). */
  fusionArc?: string;
  /** The fusion's norm (default 'layer'). */
  normType?: FusionNorm;
  /** DifFeed: decoder blocks that feed back (default: `defaultFeedbackFrom`). */
  feedbackFrom?: readonly number[];
  /** DifFeed: feedback arch (default `DEFAULT_FEEDBACK_ARCH`). */
  feedbackArch?: string;
  /** Initialization seed of the head (default 0). */
  seed?: number;
  /**
   * Backbone mode `finetune` (default false: `freeze`): the U-Net's weights
   * train with the head in one SGD optimizer; the model reads images and
   * noise, never cached features. Kinds on a pretrained U-Net only.
   */
  finetune?: boolean;
}

/** A protocol's classifier, which also builds from images (for export and the image pipeline). @public */
export interface ProtocolModel extends ClassifierGraph {
  /** Logits from clean images, per-timestep noise and timesteps (the standalone model). */
  forwardImages(context: BuildContext, inputs: ImageInputs): SymbolicTensor;
  /** Timesteps the model reads (none for pixels). */
  readonly timesteps: readonly number[];
}

/** What a kind's `createModel` is given besides the settings. @public */
export interface ModelContext {
  /** The U-Net (pretrained, or freshly initialized for a kind whose `unet` is `'random'`); absent for `'none'`. */
  unet?: DiffusionUNet;
  /** [C, H, W] of the raw images (the pixel baseline). */
  imageShape?: readonly [number, number, number];
}

/**
 * How a head kind trains and evaluates as a `diffssl train --protocol`.
 *
 * @public
 */
export interface ProtocolSupport {
  /** The reference's SGD learning rate for this kind. */
  readonly learningRate: number;
  /** The reference's `pre_pool_size` (0: the kind does not pool). */
  readonly prePoolSize: number;
  /**
   * What its examples are: raw `'pixels'`; frozen U-Net `'features'`, which
   * the feature cache can hold; or `'images'` with seeded noise, for a model
   * that runs the U-Net itself on every step.
   */
  readonly examples: 'pixels' | 'features' | 'images';
  /** The U-Net it reads: none, the pretrained checkpoint, or the same architecture freshly initialized. */
  readonly unet: 'none' | 'pretrained' | 'random';
  /** How many blocks and timesteps it reads: none, exactly one of each, or one or more. */
  readonly blocks: 'none' | 'one' | 'several';
  /** The kind-specific options it takes; any other given is refused. */
  readonly options: readonly HeadOptionName[];
  /**
   * Builds the model. Blocks, timesteps, the U-Net and class conditioning are
   * checked against the fields above before it is called.
   *
   * @throws `ConfigError` for settings the kind cannot take
   */
  createModel(settings: ProtocolSettings, context: ModelContext): ProtocolModel;
}

/** A head built from a `head.json` spec, and how to apply it to the named inputs of a batch. @public */
export interface BuiltHead {
  /** The module (its state dict has the reference's names). */
  module: Module;
  /** Names and shapes (without the batch axis) of the inputs the head reads. */
  inputs: Map<string, number[]>;
  /** Builds the logits from graph inputs named as `inputs`. */
  forward(context: BuildContext, inputs: ReadonlyMap<string, SymbolicTensor>): SymbolicTensor;
}

/** What every `head.json` spec has. @public */
export interface HeadSpecBase {
  /** The `"kind"` value in `head.json`. */
  kind: string;
}

/** What a head reads from a U-Net (`diffssl finetune-step`). @public */
export interface UNetReads {
  /** The blocks read. */
  blocks: number[];
  /** The timesteps read. */
  timesteps: number[];
  /** The name of the head's input that the feature map of `block` at `timestep` feeds. */
  inputName(timestep: number, block: number): string;
}

/**
 * The `head.json` form of a kind, as `diffssl head-step` reads it: the
 * reference's argument names, checked strictly.
 *
 * @public
 */
export interface HeadSpecForm<Spec extends HeadSpecBase = HeadSpecBase> {
  /** The `"kind"` value in `head.json`. */
  readonly kind: Spec['kind'];
  /** Every key the form accepts besides `"kind"`. */
  readonly keys: readonly string[];
  /**
   * Checks a parsed object whose `"kind"` is this form's.
   *
   * @throws `ConfigError` naming the key, what was expected and what was found
   */
  parse(spec: Readonly<Record<string, unknown>>): Spec;
  /**
   * Builds the head, reading channel counts and sizes from example input
   * tensors (only their shapes are read).
   *
   * @throws `ConfigError` for a missing input tensor
   */
  build(spec: Spec, examples: ReadonlyMap<string, Pick<HostTensor, 'shape'>>, seed: number): BuiltHead;
  /**
   * What the head reads from a U-Net, for `diffssl finetune-step`: the blocks,
   * the timesteps, and the name of the head's input that each (timestep,
   * block) feature map feeds. Absent for a form that names no block.
   *
   * @throws `ConfigError` for a spec without the blocks or timesteps the form needs
   */
  readsFromUNet?(spec: Spec): UNetReads;
}

/**
 * One head kind: everything the project knows about it, in one place. The
 * registry (`HEAD_KINDS`) lists them; commands, protocols, export, the
 * feature cache and the web page read it.
 *
 * @public
 */
export interface HeadKind<Name extends string = string> {
  /** Its name: the `--protocol` value. */
  readonly name: Name;
  /** One line for help texts and docs. */
  readonly summary: string;
  /** How it trains as a protocol; absent for a kind that only `head-step` runs. */
  readonly protocol?: ProtocolSupport;
  /** Its `head.json` form; absent for a kind that `head-step` cannot run. */
  readonly spec?: HeadSpecForm;
}

/** A head kind that trains as a protocol. @public */
export interface ProtocolHeadKind<Name extends string = string> extends HeadKind<Name> {
  /** How it trains as a protocol. */
  readonly protocol: ProtocolSupport;
}

/** A head kind that `diffssl head-step` (and `finetune-step`) can run, with its `head.json` form. @public */
export interface SpecHeadKind<Name extends string = string, Spec extends HeadSpecBase = HeadSpecBase> extends HeadKind<Name> {
  /** Its `head.json` form. */
  readonly spec: HeadSpecForm<Spec>;
}
