import { ConfigError, type HostTensor, type Layer, type Module, type SymbolicTensor, type BuildContext } from '@diffssl/core';
import { DifFormer, fusionKey, type FusionNorm } from '@diffssl/difformer';
import { AttentionHead, LinearHead } from '@diffssl/pool';

/**
 * A head described with the reference's argument names, as the fixtures'
 * `__metadata__` and `diffssl head-step --head` write it.
 *
 * @public
 */
export type HeadSpec =
  | {
      /** The linear GD(L) head (the reference's `Head`). */
      kind: 'linear';
      /** The block the features come from (recorded only by `head-step`, which reads the tensor `input`; the block `finetune-step` taps). */
      block?: number;
      /** The timestep of the features (one; `finetune-step` reads it, `head-step` ignores it). */
      t_list?: number[];
      /** Adaptive average pooling of the feature map to this size (0: none). */
      pre_pool_size: number;
      /** Hidden layers before the classifier (the reference's `head_arc`, default ''). */
      head_arc?: string;
      /** Number of classes. */
      num_classes: number;
    }
  | {
      /** An attention head over several blocks and timesteps (the reference's `AttentionFusion`, DifFormer). */
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
  | {
      /** An attention head from a layer string alone, on one input. */
      kind: 'layers';
      /** The reference's layer string. */
      layer_string: string;
    };

function positiveIntegers(what: string, value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => Number.isSafeInteger(v) && v >= 0)) throw new ConfigError(`head spec: ${what} must be a non-empty list of integers; found ${JSON.stringify(value)}`);
  return value as number[];
}

function positiveInteger(what: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) throw new ConfigError(`head spec: ${what} must be a positive integer; found ${JSON.stringify(value)}`);
  return value as number;
}

/**
 * Checks a parsed head spec (for example from `head.json`).
 *
 * @throws `ConfigError` naming the key, what was expected and what was found
 * @public
 */
export function parseHeadSpec(value: unknown): HeadSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`head spec: expected a JSON object with "kind"; found ${JSON.stringify(value)}`);
  const spec = value as Record<string, unknown>;
  const known: Record<string, string[]> = {
    linear: ['kind', 'block', 't_list', 'pre_pool_size', 'head_arc', 'num_classes'],
    fusion: ['kind', 'fusion_arc', 'blocks', 't_list', 'norm_type', 'pre_pool_size', 'num_classes', 'dims', 'sizes'],
    layers: ['kind', 'layer_string'],
  };
  const keys = known[String(spec.kind)];
  if (!keys) throw new ConfigError(`head spec: "kind" must be "linear", "fusion" or "layers"; found ${JSON.stringify(spec.kind)}`);
  const unknown = Object.keys(spec).filter((key) => !keys.includes(key));
  if (unknown.length > 0) throw new ConfigError(`head spec: unknown key(s) ${unknown.join(', ')} for kind "${String(spec.kind)}"; known: ${keys.join(', ')}`);
  switch (spec.kind) {
    case 'linear':
      if (spec.head_arc !== undefined && typeof spec.head_arc !== 'string') throw new ConfigError(`head spec: head_arc must be a string such as "" or "2048_1024"; found ${JSON.stringify(spec.head_arc)}`);
      return {
        kind: 'linear',
        pre_pool_size: positiveInteger('pre_pool_size', spec.pre_pool_size),
        head_arc: (spec.head_arc as string | undefined) ?? '',
        num_classes: positiveInteger('num_classes', spec.num_classes),
        ...(spec.block !== undefined ? { block: positiveInteger('block', spec.block) } : {}),
        ...(spec.t_list !== undefined ? { t_list: positiveIntegers('t_list', spec.t_list) } : {}),
      };
    case 'fusion':
      if (typeof spec.fusion_arc !== 'string') throw new ConfigError(`head spec: fusion_arc must be a layer string; found ${JSON.stringify(spec.fusion_arc)}`);
      if (spec.norm_type !== undefined && spec.norm_type !== 'layer' && spec.norm_type !== 'batch') throw new ConfigError(`head spec: norm_type must be "layer" or "batch"; found ${JSON.stringify(spec.norm_type)}`);
      return {
        kind: 'fusion',
        fusion_arc: spec.fusion_arc,
        blocks: positiveIntegers('blocks', spec.blocks),
        t_list: positiveIntegers('t_list', spec.t_list),
        norm_type: (spec.norm_type as FusionNorm | undefined) ?? 'layer',
        pre_pool_size: positiveInteger('pre_pool_size', spec.pre_pool_size),
        num_classes: positiveInteger('num_classes', spec.num_classes),
      };
    default:
      if (typeof spec.layer_string !== 'string') throw new ConfigError(`head spec: layer_string must be a string; found ${JSON.stringify(spec.layer_string)}`);
      return { kind: 'layers', layer_string: spec.layer_string };
  }
}

/** A head built from a spec, and how to apply it to the named inputs of a batch. @public */
export interface BuiltHead {
  /** The module (its state dict has the reference's names). */
  module: Module;
  /** Names and shapes (without the batch axis) of the inputs the head reads. */
  inputs: Map<string, number[]>;
  /** Builds the logits from graph inputs named as `inputs`. */
  forward(context: BuildContext, inputs: ReadonlyMap<string, SymbolicTensor>): SymbolicTensor;
}

/**
 * Builds the head a spec describes, reading channel counts and sizes from
 * example input tensors: `input` [B, C, H, W] for `linear` and `layers`, and
 * `t{T}/block{NN}` for `fusion`.
 *
 * @param spec - the head spec
 * @param examples - tensors with the input shapes (only shapes are read)
 * @param seed - initialization seed (default 0)
 * @throws `ConfigError` for a missing input tensor
 * @public
 */
export function buildHead(spec: HeadSpec, examples: ReadonlyMap<string, Pick<HostTensor, 'shape'>>, seed = 0): BuiltHead {
  const need = (name: string) => {
    const tensor = examples.get(name);
    if (!tensor) throw new ConfigError(`head spec (${spec.kind}): expected an input tensor '${name}'; found ${[...examples.keys()].join(', ') || 'none'}`);
    if (tensor.shape.length !== 4) throw new ConfigError(`head spec (${spec.kind}): input '${name}' must be [B, C, H, W]; found [${tensor.shape.join(', ')}]`);
    return tensor.shape.slice(1) as number[];
  };
  if (spec.kind === 'fusion') {
    const inputs = new Map<string, number[]>();
    for (const t of spec.t_list) for (const block of spec.blocks) inputs.set(fusionKey(t, block), need(fusionKey(t, block)));
    const blocks = spec.blocks.map((block) => {
      const [channels, resolution] = inputs.get(fusionKey(spec.t_list[0]!, block))!;
      return { block, channels: channels!, resolution: resolution! };
    });
    const module = new DifFormer({ blocks, firstPassBlocks: spec.blocks, timesteps: spec.t_list, fusion: spec.fusion_arc, normType: spec.norm_type, prePoolSize: spec.pre_pool_size, numClasses: spec.num_classes, seed });
    return { module, inputs, forward: (context, tensors) => module.forward(context, tensors) };
  }
  const shape = need('input');
  const layer: Layer =
    spec.kind === 'linear'
      ? new LinearHead({ channels: shape[0]!, numClasses: spec.num_classes, prePoolSize: spec.pre_pool_size, headArc: spec.head_arc ?? '', seed })
      : AttentionHead.fromLayerString(spec.layer_string, { seed });
  return { module: layer, inputs: new Map([['input', shape]]), forward: (context, tensors) => layer.forward(context, tensors.get('input')!) };
}
