import { ConfigError } from '@diffssl/core';
import { DifFormer, fusionKey, type FusionNorm } from '@diffssl/difformer';
import { FeatureHeadClassifier } from '../../protocols/feature-head.js';
import type { ProtocolHeadKind, SpecHeadKind, ModelContext, ProtocolModel, ProtocolSettings, ProtocolSupport } from '../head-kind.js';
import { inputShape, integerList, positiveInteger, string } from '../spec-fields.js';

/** The attention head of the FM-10k reference runs (dim 64, 4 heads, MLP ratio 4, 2 blocks, CLS token). @public */
export const DEFAULT_FUSION_ARC = 'Use_CLS_Token:True:64,Insert_CLS_Token,Attention:64:4:4:2,Extract_CLS_Token';

/** The `head.json` form of the fusion heads (`attention` and `difformer`; the reference's `AttentionFusion`). @public */
export interface FusionHeadSpec {
  /** An attention head over several blocks and timesteps (one of each: the attention head). */
  kind: 'fusion';
  /** The attention head's layer string. */
  fusion_arc: string;
  /** The blocks it reads. */
  blocks: number[];
  /** The timesteps it reads. */
  t_list: number[];
  /** How each block's pooled map is normalized (default `'layer'`). */
  norm_type?: FusionNorm;
  /** Adaptive average pooling of each feature map to this size. */
  pre_pool_size: number;
  /** Number of classes. */
  num_classes: number;
}

/**
 * A DifFormer (the reference's `AttentionFusion`) on the pooled features of
 * the given blocks and timesteps. Shared by the `attention` and `difformer`
 * kinds.
 *
 * @public
 */
export function fusionFeatureModel(settings: ProtocolSettings, context: ModelContext, prePoolSize: number): ProtocolModel {
  const { blocks, timesteps, numClasses } = settings;
  return new FeatureHeadClassifier(context.unet!, {
    blocks,
    timesteps,
    prePoolSize,
    numClasses,
    createHead: (shapes) => {
      const head = DifFormer.fromUNet(shapes, {
        firstPassBlocks: blocks,
        timesteps,
        fusion: settings.fusionArc ?? DEFAULT_FUSION_ARC,
        normType: settings.normType ?? 'layer',
        prePoolSize,
        numClasses,
        seed: settings.seed ?? 0,
      });
      return { module: head, forward: (buildContext, features) => head.forward(buildContext, features) };
    },
  });
}

const difformerProtocol: ProtocolSupport = {
  learningRate: 5e-2,
  prePoolSize: 7,
  examples: 'features',
  unet: 'pretrained',
  blocks: 'several',
  options: ['prePoolSize', 'fusionArc', 'normType'],
  createModel: (settings, context) => fusionFeatureModel(settings, context, settings.prePoolSize ?? difformerProtocol.prePoolSize),
};

/**
 * `difformer`: DifFormer, one attention head over the tokens of several
 * blocks, per timestep; the CLS outputs of the timesteps are concatenated
 * and a Linear classifies them.
 *
 * @public
 */
export const difformerHeadKind: ProtocolHeadKind<'difformer'> & SpecHeadKind<'difformer', FusionHeadSpec> = {
  name: 'difformer',
  summary: 'DifFormer: one attention head fusing the tokens of several blocks and timesteps',
  protocol: difformerProtocol,
  spec: {
    kind: 'fusion',
    // dims and sizes are accepted as the reference fixtures write them; the shapes come from the input tensors.
    keys: ['fusion_arc', 'blocks', 't_list', 'norm_type', 'pre_pool_size', 'num_classes', 'dims', 'sizes'],
    parse: (spec): FusionHeadSpec => {
      if (spec.norm_type !== undefined && spec.norm_type !== 'layer' && spec.norm_type !== 'batch')
        throw new ConfigError(`head spec: norm_type must be "layer" or "batch"; found ${JSON.stringify(spec.norm_type)}`);
      return {
        kind: 'fusion',
        fusion_arc: string('fusion_arc', spec.fusion_arc, 'a layer string'),
        blocks: integerList('blocks', spec.blocks),
        t_list: integerList('t_list', spec.t_list),
        norm_type: (spec.norm_type as FusionNorm | undefined) ?? 'layer',
        pre_pool_size: positiveInteger('pre_pool_size', spec.pre_pool_size),
        num_classes: positiveInteger('num_classes', spec.num_classes),
      };
    },
    readsFromUNet: (spec: FusionHeadSpec) => ({
      blocks: spec.blocks,
      timesteps: spec.t_list,
      inputName: (timestep: number, block: number) => fusionKey(timestep, block),
    }),
    build: (spec: FusionHeadSpec, examples, seed) => {
      const inputs = new Map<string, number[]>();
      for (const t of spec.t_list) for (const block of spec.blocks) inputs.set(fusionKey(t, block), inputShape('fusion', examples, fusionKey(t, block)));
      const blocks = spec.blocks.map((block) => {
        const [channels, resolution] = inputs.get(fusionKey(spec.t_list[0]!, block))!;
        return { block, channels: channels!, resolution: resolution! };
      });
      const module = new DifFormer({
        blocks,
        firstPassBlocks: spec.blocks,
        timesteps: spec.t_list,
        fusion: spec.fusion_arc,
        normType: spec.norm_type,
        prePoolSize: spec.pre_pool_size,
        numClasses: spec.num_classes,
        seed,
      });
      return { module, inputs, forward: (context, tensors) => module.forward(context, tensors) };
    },
  },
};
