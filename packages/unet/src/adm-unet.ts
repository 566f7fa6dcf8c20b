import {
  add, avgPool2d, cast, concat, ConfigError, conv2d, cos, gather, Graph, groupNorm, HostTensor, linear, matmul, mul, reshape, resizeBilinear, ShapeError, silu, sin,
  slice, softmax, transpose, upsampleNearest2x, type SymbolicTensor,
} from '@diffssl/core';
import { admConfig, type AdmConfig, type AdmPresetName, type GuidedDiffusionFlags } from './config.js';
import { CheckpointMismatchError } from './checkpoint/errors.js';
import { expectedWeights, unetLayout, type BlockSpec, type LayerSpec, type UNetLayout } from './layout.js';

/** Options of {@link AdmUNet.build}. @public */
export interface UNetBuildOptions {
  /** Noised images [B, in_channels, H, W], float32. */
  x: SymbolicTensor;
  /** One int64 timestep per image, [B]. */
  timesteps: SymbolicTensor;
  /** Class labels (int64 [B]) for class-conditional models. */
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
  /** Compute precision of convolutions and activations (normalization statistics stay float32). */
  dtype?: 'float32' | 'float16';
}

/** What {@link AdmUNet.build} returns. @public */
export interface UNetOutputs {
  /** Block outputs by block number (float32). */
  blocks: Map<number, SymbolicTensor>;
  /** The model output [B, out_channels, H, W] when requested. */
  output?: SymbolicTensor;
}

/** max_period of guided-diffusion's timestep embedding. */
const MAX_PERIOD = 10000;

/**
 * The guided-diffusion ADM U-Net built from its weights with `@diffssl/core`
 * ops, with feature taps at any numbered block, early exit after the deepest
 * tap, optional DifFeed feedback inputs and float16.
 *
 * @example
 * ```ts
 * const unet = new AdmUNet('256x256_diffusion_uncond', await loadCheckpoint('256x256_diffusion_uncond.pt'));
 * const graph = new Graph();
 * const x = graph.input('x', 'float32', ['batch', 3, 256, 256]);
 * const t = graph.input('t', 'int64', ['batch']);
 * const { blocks } = unet.build(graph, { x, timesteps: t, taps: [24] });
 * ```
 * @public
 */
export class AdmUNet {
  /** The resolved configuration. */
  readonly config: AdmConfig;
  /** The numbered blocks. */
  readonly layout: UNetLayout;
  private readonly weights: ReadonlyMap<string, HostTensor>;
  private readonly graphWeights = new WeakMap<Graph, Map<string, SymbolicTensor>>();

  /**
   * @param config - guided-diffusion flags, a preset name, or a resolved config
   * @param weights - the checkpoint's tensors by state-dict name
   * @throws `CheckpointMismatchError` listing missing, unexpected and mis-shaped keys
   */
  constructor(config: GuidedDiffusionFlags | AdmPresetName | AdmConfig, weights: ReadonlyMap<string, HostTensor>) {
    this.config = typeof config === 'object' && 'modelChannels' in config ? config : admConfig(config);
    this.layout = unetLayout(this.config);
    const expected = expectedWeights(this.config);
    const missing: string[] = [];
    const misshaped: string[] = [];
    for (const [name, shape] of expected) {
      const tensor = weights.get(name);
      if (!tensor) missing.push(name);
      else if (tensor.shape.join() !== shape.join()) misshaped.push(`${name}: expected [${shape.join(', ')}], found [${tensor.shape.join(', ')}]`);
      else if (tensor.dtype !== 'float32' && tensor.dtype !== 'float16' && tensor.dtype !== 'float64') misshaped.push(`${name}: expected a float tensor, found ${tensor.dtype}`);
    }
    const unexpected = [...weights.keys()].filter((name) => !expected.has(name));
    if (missing.length || unexpected.length || misshaped.length) throw new CheckpointMismatchError({ missing, unexpected, misshaped });
    this.weights = weights;
  }

  /** Number of blocks N. */
  get blockCount(): number {
    return this.layout.blocks.length;
  }

  /**
   * Adds the U-Net to a graph. Nothing after the deepest tap is built unless
   * the output is requested.
   *
   * @throws `ConfigError` for a tap outside 1..N, a feedback target that is not an encoder block; `ShapeError` for inputs that do not fit
   */
  build(graph: Graph, options: UNetBuildOptions): UNetOutputs {
    const { x, timesteps } = options;
    const dtype = options.dtype ?? 'float32';
    const n = this.blockCount;
    const taps = [...new Set(options.taps)];
    for (const tap of taps) if (!Number.isInteger(tap) || tap < 1 || tap > n) throw new ConfigError(`U-Net: block ${tap} is outside 1..${n}`);
    if (taps.length === 0 && !options.output) throw new ConfigError('U-Net: request at least one block tap or the output');
    const { imageSize, inChannels } = this.config;
    if (x.rank !== 4 || x.shape[1] !== inChannels || x.shape[2] !== imageSize || x.shape[3] !== imageSize) {
      throw new ShapeError(`U-Net: expected x of shape [batch, ${inChannels}, ${imageSize}, ${imageSize}]; found [${x.shape.join(', ')}]`);
    }
    if (timesteps.rank !== 1 || timesteps.dtype !== 'int64') throw new ShapeError(`U-Net: expected int64 timesteps of shape [batch]; found ${timesteps.describe()}`);
    if (this.config.numClasses && !options.classLabels) throw new ConfigError('U-Net: this model is class-conditional; pass classLabels');
    const feedback = options.feedback ?? new Map<number, SymbolicTensor>();
    for (const [block, tensor] of feedback) {
      const spec = this.layout.blocks[block - 1];
      if (!spec || spec.part !== 'encoder') throw new ConfigError(`U-Net: feedback target ${block} is not an encoder block (1..${this.layout.encoderBlocks})`);
      if (tensor.rank !== 4 || tensor.shape[1] !== spec.channels) {
        throw new ShapeError(`U-Net: feedback for block ${block} must be [batch, ${spec.channels}, h, w]; found [${tensor.shape.join(', ')}]`);
      }
    }
    const last = options.output ? n : Math.max(...taps);
    const w = (name: string, precision: 'float32' | 'float16' = 'float32') => this.weight(graph, name, precision);
    const convDtype = dtype;

    let emb = this.timeEmbedding(graph, timesteps);
    if (this.config.numClasses) emb = add(emb, gather(w('label_emb.weight'), options.classLabels!, 0));
    const embActivated = silu(emb);
    const context: BlockContext = { unet: this, graph, embActivated, dtype: convDtype, w };

    const blocks = new Map<number, SymbolicTensor>();
    const skips: SymbolicTensor[] = [];
    let h = cast(x, dtype);
    for (const spec of this.layout.blocks) {
      if (spec.number > last) break;
      if (spec.part === 'decoder') h = concat([h, skips.pop()!], 1);
      for (const layer of spec.layers) h = this.layer(context, layer, h);
      const injected = feedback.get(spec.number);
      if (injected) h = add(h, cast(resizeBilinear(injected, [spec.resolution, spec.resolution]), dtype));
      if (spec.part === 'encoder') skips.push(h);
      if (taps.includes(spec.number)) blocks.set(spec.number, cast(h, 'float32'));
    }
    if (!options.output) return { blocks };
    const normalized = this.groupNorm32(context, h, 'out.0');
    const output = conv2d(silu(normalized), w('out.2.weight', dtype), w('out.2.bias', dtype), { padding: 1 });
    return { blocks, output: cast(output, 'float32') };
  }

  /** The checkpoint tensors by state-dict name (read-only; shared, not copied). */
  weightTensors(): ReadonlyMap<string, HostTensor> {
    return this.weights;
  }

  /** The block whose output feeds back from decoder block `b`: 2*N_in + 2 - b. */
  feedbackTarget(decoderBlock: number): number {
    const spec = this.layout.blocks[decoderBlock - 1];
    if (!spec || spec.part !== 'decoder') throw new ConfigError(`U-Net: block ${decoderBlock} is not a decoder block (${this.layout.encoderBlocks + 2}..${this.blockCount})`);
    return 2 * this.layout.encoderBlocks + 2 - decoderBlock;
  }

  /** The spec of block `number` (1-based). */
  block(number: number): BlockSpec {
    const spec = this.layout.blocks[number - 1];
    if (!spec) throw new ConfigError(`U-Net: block ${number} is outside 1..${this.blockCount}`);
    return spec;
  }

  private weight(graph: Graph, name: string, precision: 'float32' | 'float16'): SymbolicTensor {
    let cache = this.graphWeights.get(graph);
    if (!cache) this.graphWeights.set(graph, (cache = new Map()));
    const key = precision === 'float32' ? name : `${name}.${precision}`;
    let tensor = cache.get(key);
    if (!tensor) {
      const value = this.weights.get(name)!;
      const converted = value.dtype === precision ? value : value.cast(precision);
      tensor = graph.get(key) ?? graph.weight(key, converted);
      cache.set(key, tensor);
    }
    return tensor;
  }

  /** Sinusoidal embedding (cos half, then sin half) and the time MLP, in float32 as the reference. */
  private timeEmbedding(graph: Graph, timesteps: SymbolicTensor): SymbolicTensor {
    const dim = this.config.modelChannels;
    const half = Math.floor(dim / 2);
    // torch: exp(-log(max_period) * arange(half, float32) / half), each step rounded to float32.
    const freqs = Array.from({ length: half }, (_, i) => Math.fround(Math.exp(Math.fround(Math.fround(Math.fround(-Math.log(MAX_PERIOD)) * i) / half))));
    const args = mul(reshape(cast(timesteps, 'float32'), [timesteps.shape[0]!, 1]), graph.constant(HostTensor.from('float32', [1, half], freqs)));
    let embedding = concat([cos(args), sin(args)], 1);
    if (dim % 2 === 1) embedding = concat([embedding, mul(slice(embedding, [0], [1], [1]), 0)], 1);
    const w = (name: string) => this.weight(graph, name, 'float32');
    return linear(silu(linear(embedding, w('time_embed.0.weight'), w('time_embed.0.bias'))), w('time_embed.2.weight'), w('time_embed.2.bias'));
  }

  private groupNorm32(context: BlockContext, h: SymbolicTensor, prefix: string): SymbolicTensor {
    const normalized = groupNorm(cast(h, 'float32'), context.w(`${prefix}.weight`), context.w(`${prefix}.bias`), { groups: 32, epsilon: 1e-5 });
    return cast(normalized, context.dtype);
  }

  private layer(context: BlockContext, layer: LayerSpec, h: SymbolicTensor): SymbolicTensor {
    const { w, dtype } = context;
    switch (layer.kind) {
      case 'conv':
        return conv2d(h, w(`${layer.prefix}.weight`, dtype), w(`${layer.prefix}.bias`, dtype), { padding: 1 });
      case 'downsample':
        return conv2d(h, w(`${layer.prefix}.op.weight`, dtype), w(`${layer.prefix}.op.bias`, dtype), { padding: 1, stride: 2 });
      case 'upsample':
        return conv2d(upsampleNearest2x(h), w(`${layer.prefix}.conv.weight`, dtype), w(`${layer.prefix}.conv.bias`, dtype), { padding: 1 });
      case 'resblock':
        return this.resBlock(context, layer, h);
      case 'attention':
        return this.attention(context, layer, h);
    }
  }

  private resBlock(context: BlockContext, layer: Extract<LayerSpec, { kind: 'resblock' }>, x: SymbolicTensor): SymbolicTensor {
    const { w, dtype } = context;
    const p = layer.prefix;
    const resample = (t: SymbolicTensor) => (layer.resample === 'up' ? upsampleNearest2x(t) : layer.resample === 'down' ? avgPool2d(t, 2) : t);
    let h = silu(this.groupNorm32(context, x, `${p}.in_layers.0`));
    h = resample(h);
    const skipInput = resample(x);
    h = conv2d(h, w(`${p}.in_layers.2.weight`, dtype), w(`${p}.in_layers.2.bias`, dtype), { padding: 1 });
    const out = layer.outChannels;
    const embOut = cast(linear(context.embActivated, w(`${p}.emb_layers.1.weight`), w(`${p}.emb_layers.1.bias`)), dtype);
    const batch = x.shape[0]!;
    if (this.config.useScaleShiftNorm) {
      const scale = reshape(slice(embOut, [0], [out], [1]), [batch, out, 1, 1]);
      const shift = reshape(slice(embOut, [out], [2 * out], [1]), [batch, out, 1, 1]);
      h = add(mul(this.groupNorm32(context, h, `${p}.out_layers.0`), add(scale, 1)), shift);
    } else {
      h = this.groupNorm32(context, add(h, reshape(embOut, [batch, out, 1, 1])), `${p}.out_layers.0`);
    }
    h = conv2d(silu(h), w(`${p}.out_layers.3.weight`, dtype), w(`${p}.out_layers.3.bias`, dtype), { padding: 1 });
    const skip = layer.inChannels === out ? skipInput : conv2d(skipInput, w(`${p}.skip_connection.weight`, dtype), w(`${p}.skip_connection.bias`, dtype));
    return add(skip, h);
  }

  private attention(context: BlockContext, layer: Extract<LayerSpec, { kind: 'attention' }>, x: SymbolicTensor): SymbolicTensor {
    const { w, dtype } = context;
    const p = layer.prefix;
    const [batch, channels, height, width] = x.shape as [string | number, number, number, number];
    const length = height * width;
    const heads = layer.heads;
    const ch = channels / heads;
    const flat = reshape(x, [batch, channels, length]);
    const normalized = this.groupNorm32(context, flat, `${p}.norm`);
    const conv1d = (name: string, input: SymbolicTensor, outChannels: number) => {
      const weight = this.conv1dWeight(context.graph, `${p}.${name}`, dtype);
      return add(matmul(weight, input), reshape(w(`${p}.${name}.bias`, dtype), [outChannels, 1]));
    };
    const qkv = conv1d('qkv', normalized, 3 * channels);
    let q: SymbolicTensor;
    let k: SymbolicTensor;
    let v: SymbolicTensor;
    if (this.config.useNewAttentionOrder) {
      const part = (i: number) => reshape(slice(qkv, [i * channels], [(i + 1) * channels], [1]), [-1, ch, length]);
      [q, k, v] = [part(0), part(1), part(2)];
    } else {
      const grouped = reshape(qkv, [-1, 3 * ch, length]);
      const part = (i: number) => slice(grouped, [i * ch], [(i + 1) * ch], [1]);
      [q, k, v] = [part(0), part(1), part(2)];
    }
    const scale = 1 / Math.sqrt(Math.sqrt(ch));
    const logits = matmul(transpose(mul(q, scale), [0, 2, 1]), mul(k, scale));
    const weights = cast(softmax(cast(logits, 'float32'), -1), dtype);
    const attended = reshape(matmul(v, transpose(weights, [0, 2, 1])), [batch, channels, length]);
    const projected = conv1d('proj_out', attended, channels);
    return reshape(add(flat, projected), [batch, channels, height, width]);
  }

  private conv1dWeight(graph: Graph, name: string, precision: 'float32' | 'float16'): SymbolicTensor {
    const key = `${name}.weight`;
    const original = this.weights.get(key)!;
    const matrixName = `${key}.matrix`;
    let cache = this.graphWeights.get(graph)!;
    const cacheKey = `${matrixName}.${precision}`;
    let tensor = cache.get(cacheKey);
    if (!tensor) {
      const matrix = original.reshape([original.shape[0]!, original.shape[1]!]);
      tensor = graph.weight(precision === 'float32' ? matrixName : `${matrixName}.${precision}`, matrix.dtype === precision ? matrix : matrix.cast(precision));
      cache = this.graphWeights.get(graph)!;
      cache.set(cacheKey, tensor);
    }
    return tensor;
  }
}

interface BlockContext {
  unet: AdmUNet;
  graph: Graph;
  embActivated: SymbolicTensor;
  dtype: 'float32' | 'float16';
  w: (name: string, precision?: 'float32' | 'float16') => SymbolicTensor;
}
