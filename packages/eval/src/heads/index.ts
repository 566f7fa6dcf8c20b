/**
 * The head registry of `@diffssl/eval`: every head kind (its protocol
 * settings and defaults, its options and flags, its `head.json` form and its
 * model builder) in one list. Browser-safe: the web page reads it too.
 *
 * @example
 * ```ts
 * import { createProtocolModel, HEAD_KINDS } from '@diffssl/eval/heads';
 * const names = HEAD_KINDS.map((kind) => kind.name);
 * const model = createProtocolModel({ protocol: 'attention', blocks: [10], timesteps: [50], numClasses: 10 }, unet);
 * ```
 *
 * @packageDocumentation
 * @module @diffssl/eval/heads
 */
export type {
  BuiltHead,
  HeadKind,
  HeadOptionName,
  HeadSpecBase,
  HeadSpecForm,
  ModelContext,
  ProtocolHeadKind,
  ProtocolModel,
  ProtocolSettings,
  ProtocolSupport,
  SpecHeadKind,
  UNetReads,
} from './head-kind.js';
export { flagOf, HEAD_OPTIONS, type HeadOptionDefinition } from './head-options.js';
export {
  checkProtocolOptions,
  createProtocolModel,
  HEAD_KINDS,
  protocolKind,
  PROTOCOLS,
  takesOption,
  type GivenOptions,
  type HeadKindName,
  type Protocol,
  type ProtocolKind,
} from './registry.js';
export { buildHead, parseHeadSpec, type HeadSpec } from './head-spec.js';
export { attentionHeadKind } from './kinds/attention.js';
export { DEFAULT_FEEDBACK_ARCH, defaultFeedbackFrom, diffeedHeadKind } from './kinds/diffeed.js';
export { DEFAULT_FUSION_ARC, difformerHeadKind, fusionFeatureModel, type FusionHeadSpec } from './kinds/difformer.js';
export { layersHeadKind, type LayerStringHeadSpec } from './kinds/layers.js';
export { linearFeatureModel, linearHeadKind, type LinearHeadSpec } from './kinds/linear.js';
export { pixelsHeadKind } from './kinds/pixels.js';
export { randomHeadKind } from './kinds/random.js';
