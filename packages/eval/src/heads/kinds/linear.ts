import { ConfigError } from '@diffssl/core';
import { fusionKey } from '@diffssl/difformer';
import { LinearHead } from '@diffssl/pool';
import { FeatureHeadClassifier } from '../../protocols/feature-head.js';
import type { ProtocolHeadKind, SpecHeadKind, ModelContext, ProtocolModel, ProtocolSettings, ProtocolSupport } from '../head-kind.js';
import { inputShape, integerList, positiveInteger, string } from '../spec-fields.js';

/** The `head.json` form of the linear head (`diffssl head-step`, `diffssl finetune-step`). @public */
export interface LinearHeadSpec {
  /** The linear GD(L) head (the reference's `Head`). */
  kind: 'linear';
  /** The block the features come from (recorded only: head-step reads the tensor `input`). */
  block?: number;
  /** The timesteps the features come from (finetune-step reads them; head-step records them only). */
  t_list?: number[];
  /** Adaptive average pooling of the feature map to this size. */
  pre_pool_size: number;
  /** Hidden layers before the classifier (the reference's `head_arc`, default ''). */
  head_arc?: string;
  /** Number of classes. */
  num_classes: number;
}

/**
 * The GD(L) model on one block at one timestep of a U-Net: a `LinearHead`
 * on the block's pooled features. Shared by the `linear` and `random` kinds.
 *
 * @public
 */
export function linearFeatureModel(settings: ProtocolSettings, context: ModelContext, prePoolSize: number): ProtocolModel {
  const { blocks, timesteps, numClasses } = settings;
  const key = fusionKey(timesteps[0]!, blocks[0]!);
  const model = new FeatureHeadClassifier(context.unet!, {
    blocks,
    timesteps,
    prePoolSize,
    numClasses,
    createHead: (shapes) => {
      const head = new LinearHead({
        channels: shapes.block(blocks[0]!).channels,
        numClasses,
        prePoolSize,
        headArc: settings.headArc ?? '',
        seed: settings.seed ?? 0,
      });
      return { module: head, forward: (buildContext, features) => head.forward(buildContext, features.get(key)!) };
    },
  });
  return model;
}

const linearProtocol: ProtocolSupport = {
  learningRate: 1e-2,
  prePoolSize: 2,
  examples: 'features',
  unet: 'pretrained',
  blocks: 'one',
  options: ['prePoolSize', 'headArc'],
  createModel: (settings, context) => linearFeatureModel(settings, context, settings.prePoolSize ?? linearProtocol.prePoolSize),
};

/**
 * `linear`: GD(L), the paper's linear probe: adaptive average pooling of one
 * block at one timestep to `pre_pool_size`, flatten, Linear (with `head_arc`,
 * hidden layers first).
 *
 * @public
 */
export const linearHeadKind: ProtocolHeadKind<'linear'> & SpecHeadKind<'linear', LinearHeadSpec> = {
  name: 'linear',
  summary: 'GD(L): one block at one timestep, average-pooled to pre_pool_size, flattened, Linear',
  protocol: linearProtocol,
  spec: {
    kind: 'linear',
    keys: ['block', 't_list', 'pre_pool_size', 'head_arc', 'num_classes'],
    parse: (spec): LinearHeadSpec => ({
      kind: 'linear',
      pre_pool_size: positiveInteger('pre_pool_size', spec.pre_pool_size),
      head_arc: spec.head_arc === undefined ? '' : string('head_arc', spec.head_arc, '"" or "2048_1024"'),
      num_classes: positiveInteger('num_classes', spec.num_classes),
      ...(spec.block !== undefined ? { block: positiveInteger('block', spec.block) } : {}),
      ...(spec.t_list !== undefined ? { t_list: integerList('t_list', spec.t_list) } : {}),
    }),
    readsFromUNet: (spec: LinearHeadSpec) => {
      if (spec.block === undefined || spec.t_list === undefined) {
        throw new ConfigError(
          `finetune-step: a linear head needs "block" and "t_list" in --head; found block ${JSON.stringify(spec.block)}, t_list ${JSON.stringify(spec.t_list)}`,
        );
      }
      if (spec.t_list.length !== 1) throw new ConfigError(`finetune-step: a linear head reads one timestep; found t_list [${spec.t_list.join(', ')}]`);
      return { blocks: [spec.block], timesteps: spec.t_list, inputName: () => 'input' };
    },
    build: (spec: LinearHeadSpec, examples, seed) => {
      const [channels] = inputShape('linear', examples, 'input');
      const module = new LinearHead({ channels: channels!, numClasses: spec.num_classes, prePoolSize: spec.pre_pool_size, headArc: spec.head_arc ?? '', seed });
      return {
        module,
        inputs: new Map([['input', inputShape('linear', examples, 'input')]]),
        forward: (context, tensors) => module.forward(context, tensors.get('input')!),
      };
    },
  },
};
