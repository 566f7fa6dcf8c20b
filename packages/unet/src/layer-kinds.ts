// The one place that knows each kind of layer of an ADM U-Net: the weights it
// holds (names, shapes, precision), the graph it builds and its cost.
import {
  add,
  avgPool2d,
  cast,
  groupNorm,
  linear,
  matmul,
  mul,
  reshape,
  silu,
  slice,
  softmax,
  transpose,
  upsampleNearest2x,
  type Conv2dOptions,
  type Graph,
  type SymbolicTensor,
} from '@diffssl/core';
import type { LayerSpec } from './layout.js';

/**
 * One checkpoint tensor a layer needs. `compute` weights are the
 * convolutions guided-diffusion's `convert_to_fp16` converts (they run in the
 * build's dtype); `float32` weights (normalization, embeddings) stay float32.
 */
export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly precision: 'compute' | 'float32';
  /**
   * How a freshly built guided-diffusion U-Net initializes the tensor:
   * PyTorch's default for Linear and Conv layers (U(-1/sqrt(fan_in),
   * 1/sqrt(fan_in))), `zeros` for what guided-diffusion's `zero_module`
   * wraps and for GroupNorm biases, `ones` for GroupNorm weights, `normal` for
   * `nn.Embedding`.
   */
  readonly init: { readonly kind: 'fanIn'; readonly fanIn: number } | { readonly kind: 'zeros' | 'ones' | 'normal' };
}

/** Configuration facts the layer kinds need. */
export interface LayerFacts {
  /** Channels of the time embedding (4 * model_channels). */
  readonly embedChannels: number;
  readonly useScaleShiftNorm: boolean;
  readonly useNewAttentionOrder: boolean;
}

/** What a layer's `build` gets from the U-Net being built. */
export interface LayerBuildContext {
  readonly graph: Graph;
  readonly facts: LayerFacts;
  /** Compute precision of the blocks. */
  readonly dtype: 'float32' | 'float16';
  /** silu(time embedding [+ label embedding]), float32 [B, embed]. */
  readonly embActivated: SymbolicTensor;
  /** A checkpoint tensor as a graph weight in the given precision. */
  weight(name: string, precision: 'float32' | 'float16'): SymbolicTensor;
  /**
   * The block convolution `{prefix}.weight`/`{prefix}.bias` applied to `h`
   * (in the context's dtype): a float convolution, or under int8 a
   * dynamically quantized one (float32 in and out).
   */
  conv(h: SymbolicTensor, prefix: string, options?: Conv2dOptions): SymbolicTensor;
  /**
   * The 1-D convolution (kernel 1) `{prefix}.weight` [O, I, 1] and its bias
   * applied to `h` [B, I, L]: `W h + b` [B, O, L], quantized under int8.
   */
  conv1d(h: SymbolicTensor, prefix: string): SymbolicTensor;
}

/** Everything about one kind of layer. */
export interface LayerKind<L extends LayerSpec> {
  /** The state-dict tensors of the layer. */
  weights(layer: L, facts: LayerFacts): WeightSpec[];
  /** Adds the layer to the graph: input in the context's dtype, output in the same dtype. */
  build(context: LayerBuildContext, layer: L, h: SymbolicTensor): SymbolicTensor;
  /** Multiply-accumulates per image of the layer's convolutions, matmuls and linear layers. */
  macs(layer: L, facts: LayerFacts): number;
}

type Kinds = { [K in LayerSpec['kind']]: LayerKind<Extract<LayerSpec, { kind: K }>> };

type Init = WeightSpec['init'];
/** PyTorch's default initialization of a Linear or Conv weight or bias. */
export const fanIn = (inputs: number): Init => ({ kind: 'fanIn', fanIn: inputs });
const ZEROS: Init = { kind: 'zeros' };
const compute = (name: string, shape: readonly number[], init: Init): WeightSpec => ({ name, shape, precision: 'compute', init });
/** A weight guided-diffusion keeps in float32 (normalization, embeddings, the `out` head). @internal */
export const float32 = (name: string, shape: readonly number[], init: Init): WeightSpec => ({ name, shape, precision: 'float32', init });
/** A GroupNorm's weight (ones) and bias (zeros), both float32. @internal */
export const groupNormWeights = (prefix: string, channels: number): WeightSpec[] => [
  float32(`${prefix}.weight`, [channels], { kind: 'ones' }),
  float32(`${prefix}.bias`, [channels], ZEROS),
];

/**
 * guided-diffusion's GroupNorm32: statistics in float32 over 32 groups, the
 * result cast back to the compute precision.
 */
export function groupNorm32(context: Pick<LayerBuildContext, 'weight'>, h: SymbolicTensor, prefix: string, dtype: 'float32' | 'float16'): SymbolicTensor {
  const normalized = groupNorm(cast(h, 'float32'), context.weight(`${prefix}.weight`, 'float32'), context.weight(`${prefix}.bias`, 'float32'), {
    groups: 32,
    epsilon: 1e-5,
  });
  return cast(normalized, dtype);
}

/** A 3x3 conv's weight and bias: PyTorch's default, or zeros under guided-diffusion's `zero_module`. */
const conv3x3 = (prefix: string, inChannels: number, outChannels: number, zero = false) => {
  const init = zero ? ZEROS : fanIn(inChannels * 9);
  return [compute(`${prefix}.weight`, [outChannels, inChannels, 3, 3], init), compute(`${prefix}.bias`, [outChannels], init)];
};

/** The layer kinds of the ADM U-Net, keyed by `LayerSpec.kind`. */
export const LAYER_KINDS: Kinds = {
  conv: {
    weights: (layer) => conv3x3(layer.prefix, layer.inChannels, layer.outChannels),
    build: (context, layer, h) => context.conv(h, layer.prefix, { padding: 1 }),
    macs: (layer) => layer.inChannels * layer.outChannels * 9 * layer.resolution ** 2,
  },
  downsample: {
    weights: (layer) => conv3x3(`${layer.prefix}.op`, layer.channels, layer.channels),
    build: (context, layer, h) => context.conv(h, `${layer.prefix}.op`, { padding: 1, stride: 2 }),
    macs: (layer) => layer.channels ** 2 * 9 * layer.resolution ** 2,
  },
  upsample: {
    weights: (layer) => conv3x3(`${layer.prefix}.conv`, layer.channels, layer.channels),
    build: (context, layer, h) => context.conv(upsampleNearest2x(h), `${layer.prefix}.conv`, { padding: 1 }),
    macs: (layer) => layer.channels ** 2 * 9 * layer.resolution ** 2,
  },
  resblock: {
    weights: (layer, facts) => {
      const { prefix: p, inChannels, outChannels } = layer;
      const embOut = (facts.useScaleShiftNorm ? 2 : 1) * outChannels;
      return [
        ...groupNormWeights(`${p}.in_layers.0`, inChannels),
        ...conv3x3(`${p}.in_layers.2`, inChannels, outChannels),
        float32(`${p}.emb_layers.1.weight`, [embOut, facts.embedChannels], fanIn(facts.embedChannels)),
        float32(`${p}.emb_layers.1.bias`, [embOut], fanIn(facts.embedChannels)),
        ...groupNormWeights(`${p}.out_layers.0`, outChannels),
        ...conv3x3(`${p}.out_layers.3`, outChannels, outChannels, true),
        ...(inChannels === outChannels
          ? []
          : [
              compute(`${p}.skip_connection.weight`, [outChannels, inChannels, 1, 1], fanIn(inChannels)),
              compute(`${p}.skip_connection.bias`, [outChannels], fanIn(inChannels)),
            ]),
      ];
    },
    build: (context, layer, x) => {
      const { weight, dtype, facts } = context;
      const p = layer.prefix;
      const resample = (t: SymbolicTensor) => (layer.resample === 'up' ? upsampleNearest2x(t) : layer.resample === 'down' ? avgPool2d(t, 2) : t);
      let h = resample(silu(groupNorm32(context, x, `${p}.in_layers.0`, dtype)));
      const skipInput = resample(x);
      h = context.conv(h, `${p}.in_layers.2`, { padding: 1 });
      const out = layer.outChannels;
      const embOut = cast(linear(context.embActivated, weight(`${p}.emb_layers.1.weight`, 'float32'), weight(`${p}.emb_layers.1.bias`, 'float32')), dtype);
      const batch = x.shape[0]!;
      if (facts.useScaleShiftNorm) {
        const scale = reshape(slice(embOut, [0], [out], [1]), [batch, out, 1, 1]);
        const shift = reshape(slice(embOut, [out], [2 * out], [1]), [batch, out, 1, 1]);
        h = add(mul(groupNorm32(context, h, `${p}.out_layers.0`, dtype), add(scale, 1)), shift);
      } else {
        h = groupNorm32(context, add(h, reshape(embOut, [batch, out, 1, 1])), `${p}.out_layers.0`, dtype);
      }
      h = context.conv(silu(h), `${p}.out_layers.3`, { padding: 1 });
      const skip = layer.inChannels === out ? skipInput : context.conv(skipInput, `${p}.skip_connection`);
      return add(skip, h);
    },
    macs: (layer, facts) => {
      const { inChannels, outChannels, resolution } = layer;
      const pixels = resolution ** 2;
      const skip = inChannels === outChannels ? 0 : inChannels * outChannels * pixels;
      const embedding = facts.embedChannels * (facts.useScaleShiftNorm ? 2 : 1) * outChannels;
      return (inChannels * outChannels + outChannels * outChannels) * 9 * pixels + skip + embedding;
    },
  },
  attention: {
    weights: (layer) => {
      const { prefix: p, channels } = layer;
      return [
        ...groupNormWeights(`${p}.norm`, channels),
        compute(`${p}.qkv.weight`, [3 * channels, channels, 1], fanIn(channels)),
        compute(`${p}.qkv.bias`, [3 * channels], fanIn(channels)),
        compute(`${p}.proj_out.weight`, [channels, channels, 1], ZEROS),
        compute(`${p}.proj_out.bias`, [channels], ZEROS),
      ];
    },
    build: (context, layer, x) => {
      const { dtype, facts } = context;
      const p = layer.prefix;
      const [batch, channels, height, width] = x.shape as [string | number, number, number, number];
      const length = height * width;
      const ch = channels / layer.heads;
      const flat = reshape(x, [batch, channels, length]);
      const normalized = groupNorm32(context, flat, `${p}.norm`, dtype);
      const qkv = context.conv1d(normalized, `${p}.qkv`);
      let parts: SymbolicTensor[];
      if (facts.useNewAttentionOrder) {
        parts = [0, 1, 2].map((i) => reshape(slice(qkv, [i * channels], [(i + 1) * channels], [1]), [-1, ch, length]));
      } else {
        const grouped = reshape(qkv, [-1, 3 * ch, length]);
        parts = [0, 1, 2].map((i) => slice(grouped, [i * ch], [(i + 1) * ch], [1]));
      }
      const [q, k, v] = parts as [SymbolicTensor, SymbolicTensor, SymbolicTensor];
      const scale = 1 / Math.sqrt(Math.sqrt(ch));
      const logits = matmul(transpose(mul(q, scale), [0, 2, 1]), mul(k, scale));
      const attention = cast(softmax(cast(logits, 'float32'), -1), dtype);
      const attended = reshape(matmul(v, transpose(attention, [0, 2, 1])), [batch, channels, length]);
      return reshape(add(flat, context.conv1d(attended, `${p}.proj_out`)), [batch, channels, height, width]);
    },
    macs: (layer) => {
      const length = layer.resolution ** 2;
      return 4 * layer.channels ** 2 * length + 2 * layer.channels * length ** 2;
    },
  },
};

/** The definition of a layer's kind. */
export function layerKind<L extends LayerSpec>(layer: L): LayerKind<L> {
  return LAYER_KINDS[layer.kind] as unknown as LayerKind<L>;
}
