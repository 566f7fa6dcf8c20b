import {
  add,
  cast,
  concat,
  ConfigError,
  conv2d,
  type Conv2dOptions,
  cos,
  gather,
  type Graph,
  HostTensor,
  linear,
  matmul,
  mul,
  convWeightMatrix,
  quantizedConv2d,
  quantizeWeightPerChannel,
  type QuantizedWeight,
  reshape,
  resizeBilinear,
  ShapeError,
  silu,
  sin,
  slice,
  type SymbolicTensor,
} from '@diffssl/core';
import { admConfig, type AdmConfig, type AdmPresetName, type GuidedDiffusionFlags } from './config.js';
import { CheckpointMismatchError } from './checkpoint/errors.js';
import { UNET_PRECISIONS, type DiffusionUNet, type UNetBuildOptions, type UNetInfo, type UNetOutputs } from './diffusion-unet.js';
import { groupNorm32, layerKind, type LayerBuildContext } from './layer-kinds.js';
import { feedbackTarget, layerFacts, unetLayout, weightSpecs, type BlockSpec, type UNetLayout } from './layout.js';
import { UNetWeights } from './unet-weights.js';

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
export class AdmUNet implements DiffusionUNet {
  /** The resolved configuration (`numClasses` from the checkpoint's `label_emb.weight`). */
  readonly config: AdmConfig;
  /** The numbered blocks. */
  readonly layout: UNetLayout;
  private readonly weights: ReadonlyMap<string, HostTensor>;
  private readonly graphWeights = new WeakMap<Graph, Map<string, SymbolicTensor>>();

  /**
   * @param config - guided-diffusion flags, a preset name, or a resolved config
   * @param weights - the checkpoint's tensors by state-dict name (float32, float16 or float64; shared, not copied)
   * @throws `CheckpointMismatchError` listing missing, unexpected and mis-shaped keys (and saying when `class_cond` disagrees with the checkpoint)
   */
  constructor(config: GuidedDiffusionFlags | AdmPresetName | AdmConfig, weights: ReadonlyMap<string, HostTensor>) {
    let resolved = typeof config === 'object' && 'modelChannels' in config ? config : admConfig(config);
    const labelEmbedding = weights.get('label_emb.weight');
    if (resolved.numClasses !== undefined && labelEmbedding && labelEmbedding.rank === 2 && labelEmbedding.shape[0]! > 0) {
      resolved = { ...resolved, numClasses: labelEmbedding.shape[0]! };
    }
    this.config = resolved;
    this.layout = unetLayout(resolved);
    const expected = weightSpecs(resolved);
    const expectedNames = new Set(expected.map((spec) => spec.name));
    const missing: string[] = [];
    const misshaped: string[] = [];
    for (const { name, shape } of expected) {
      const tensor = weights.get(name);
      if (!tensor) missing.push(name);
      else if (tensor.shape.join() !== shape.join()) misshaped.push(`${name}: expected [${shape.join(', ')}], found [${tensor.shape.join(', ')}]`);
      else if (tensor.dtype !== 'float32' && tensor.dtype !== 'float16' && tensor.dtype !== 'float64')
        misshaped.push(`${name}: expected a float tensor, found ${tensor.dtype}`);
    }
    const unexpected = [...weights.keys()].filter((name) => !expectedNames.has(name));
    if (missing.length || unexpected.length || misshaped.length) {
      const hint =
        resolved.numClasses === undefined && labelEmbedding
          ? 'the checkpoint has label_emb.weight, so it is class-conditional: set class_cond: true'
          : resolved.numClasses !== undefined && !labelEmbedding
            ? 'class_cond is true but the checkpoint has no label_emb.weight: it is unconditional, set class_cond: false'
            : undefined;
      throw new CheckpointMismatchError({ missing, unexpected, misshaped, hint });
    }
    this.weights = weights;
  }

  /** Image size, channels, schedule and number of classes. */
  get info(): UNetInfo {
    const { imageSize, inChannels, diffusionSteps, noiseSchedule, numClasses } = this.config;
    return { imageSize, inChannels, diffusionSteps, noiseSchedule, numClasses };
  }

  /** The numbered blocks 1..N. */
  get blocks(): readonly BlockSpec[] {
    return this.layout.blocks;
  }

  /** Number of blocks N. */
  get blockCount(): number {
    return this.layout.blocks.length;
  }

  /**
   * Adds the U-Net to a graph. Nothing after the deepest tap is built unless
   * the output is requested. Under float16 the block convolutions run in half
   * precision; the embeddings, normalization statistics, softmax and the
   * output head (`out`) stay float32, as guided-diffusion's `convert_to_fp16`.
   *
   * @throws `ConfigError` for a tap outside 1..N, a feedback target that is not an encoder block, class labels missing for a class-conditional model or given to an unconditional one; `ShapeError` for inputs that do not fit
   */
  build(graph: Graph, options: UNetBuildOptions): UNetOutputs {
    const { x, timesteps, classLabels } = options;
    const dtype = options.dtype ?? 'float32';
    if (!(UNET_PRECISIONS as readonly string[]).includes(dtype))
      throw new ConfigError(`U-Net: dtype must be one of ${UNET_PRECISIONS.join(', ')}; found ${JSON.stringify(dtype)}`);
    // Activations between layers: half under float16; float32 under int8 (only the convolutions' products are 8-bit).
    const activations = dtype === 'float16' ? 'float16' : 'float32';
    const n = this.blockCount;
    const taps = [...new Set(options.taps)];
    for (const tap of taps) if (!Number.isInteger(tap) || tap < 1 || tap > n) throw new ConfigError(`U-Net: block ${tap} is outside 1..${n}`);
    if (taps.length === 0 && !options.output) throw new ConfigError('U-Net: request at least one block tap or the output');
    const { imageSize, inChannels, numClasses } = this.config;
    if (x.rank !== 4 || x.shape[1] !== inChannels || x.shape[2] !== imageSize || x.shape[3] !== imageSize) {
      throw new ShapeError(`U-Net: expected x of shape [batch, ${inChannels}, ${imageSize}, ${imageSize}]; found [${x.shape.join(', ')}]`);
    }
    if (timesteps.rank !== 1 || timesteps.dtype !== 'int64')
      throw new ShapeError(`U-Net: expected int64 timesteps of shape [batch]; found ${timesteps.describe()}`);
    if (numClasses !== undefined && !classLabels)
      throw new ConfigError(`U-Net: this model is class-conditional (${numClasses} classes); pass classLabels (int64 [batch])`);
    if (numClasses === undefined && classLabels) throw new ConfigError('U-Net: classLabels were given, but this model is unconditional (class_cond false)');
    if (classLabels && (classLabels.rank !== 1 || classLabels.dtype !== 'int64'))
      throw new ShapeError(`U-Net: expected int64 classLabels of shape [batch]; found ${classLabels.describe()}`);
    const feedback = options.feedback ?? new Map<number, SymbolicTensor>();
    for (const [block, tensor] of feedback) {
      const spec = this.layout.blocks[block - 1];
      if (!spec || spec.part !== 'encoder') throw new ConfigError(`U-Net: feedback target ${block} is not an encoder block (1..${this.layout.encoderBlocks})`);
      if (tensor.rank !== 4 || tensor.shape[1] !== spec.channels) {
        throw new ShapeError(`U-Net: feedback for block ${block} must be [batch, ${spec.channels}, h, w]; found [${tensor.shape.join(', ')}]`);
      }
    }
    const last = options.output ? n : Math.max(...taps);
    const { trainable } = options;
    if (trainable) {
      if (dtype !== 'float32') throw new ConfigError(`U-Net: a fine-tuned (trainable) U-Net builds in float32; found dtype ${dtype}`);
      if (trainable.context.graph !== graph) throw new ConfigError("U-Net: the trainable weights' context builds another graph");
      if (trainable.context.training && (this.config.dropout ?? 0) > 0) {
        throw new ConfigError(
          `U-Net: this model has dropout ${this.config.dropout}; fine-tuning with dropout is not supported (no dropout op): set dropout to 0 in the flags`,
        );
      }
    }
    const weight = (name: string, precision: 'float32' | 'float16') =>
      trainable ? trainable.context.weight(trainable.weights.tensor(name)) : this.weight(graph, name, precision);
    const matrix = (name: string, precision: 'float32' | 'float16') => {
      if (!trainable) return this.matrixWeight(graph, name, precision);
      const [outputs, inputs] = this.weights.get(name)!.shape as [number, number];
      return reshape(weight(name, 'float32'), [outputs, inputs]);
    };

    let emb = this.timeEmbedding(graph, timesteps, weight);
    if (classLabels) emb = add(emb, gather(weight('label_emb.weight', 'float32'), classLabels, 0));
    const conv = (h: SymbolicTensor, prefix: string, convOptions?: Conv2dOptions) =>
      dtype === 'int8'
        ? quantizedConv2d(h, this.quantizedWeight(graph, `${prefix}.weight`), weight(`${prefix}.bias`, 'float32'), convOptions)
        : conv2d(h, weight(`${prefix}.weight`, dtype), weight(`${prefix}.bias`, dtype), convOptions);
    const conv1d = (h: SymbolicTensor, prefix: string) => {
      const [batch, inputs, length] = h.shape as [string | number, number, number];
      if (dtype === 'int8') {
        const outputs = this.weights.get(`${prefix}.weight`)!.shape[0]!;
        const image = reshape(h, [batch, inputs, length, 1]);
        return reshape(quantizedConv2d(image, this.quantizedWeight(graph, `${prefix}.weight`), weight(`${prefix}.bias`, 'float32')), [batch, outputs, length]);
      }
      const product = matmul(matrix(`${prefix}.weight`, dtype), h);
      const bias = weight(`${prefix}.bias`, dtype);
      return add(product, reshape(bias, [bias.shape[0]!, 1]));
    };
    const context: LayerBuildContext = {
      graph,
      facts: layerFacts(this.config),
      dtype: activations,
      embActivated: silu(emb),
      weight,
      conv,
      conv1d,
    };

    const blocks = new Map<number, SymbolicTensor>();
    const skips: SymbolicTensor[] = [];
    let h = cast(x, activations);
    for (const spec of this.layout.blocks) {
      if (spec.number > last) break;
      if (spec.part === 'decoder') h = concat([h, skips.pop()!], 1);
      for (const layer of spec.layers) h = layerKind(layer).build(context, layer, h);
      const injected = feedback.get(spec.number);
      if (injected) h = add(h, cast(resizeBilinear(injected, [spec.resolution, spec.resolution]), activations));
      if (spec.part === 'encoder') skips.push(h);
      if (taps.includes(spec.number)) blocks.set(spec.number, cast(h, 'float32'));
    }
    if (!options.output) return { blocks };
    // guided-diffusion keeps `out` (GroupNorm32, SiLU, conv) in float32 under use_fp16.
    const normalized = groupNorm32(context, cast(h, 'float32'), 'out.0', 'float32');
    const output = conv2d(silu(normalized), weight('out.2.weight', 'float32'), weight('out.2.bias', 'float32'), { padding: 1 });
    return { blocks, output };
  }

  /**
   * Multiply-accumulates per image of a forward pass up to block `last`
   * (convolutions, attention matmuls and the embedding projections of the
   * blocks; twice this is the FLOP count).
   *
   * @param last - the deepest block computed (default N)
   */
  forwardMacs(last = this.blockCount): number {
    const facts = layerFacts(this.config);
    let macs = 0;
    for (const block of this.layout.blocks) {
      if (block.number > last) break;
      for (const layer of block.layers) macs += layerKind(layer).macs(layer, facts);
    }
    return macs;
  }

  /** The checkpoint tensors by state-dict name (read-only; shared, not copied). */
  weightTensors(): ReadonlyMap<string, HostTensor> {
    return this.weights;
  }

  /**
   * The weights as a trainable module in float32 (a fresh copy each call),
   * for {@link UNetBuildOptions.trainable}.
   */
  trainableWeights(): UNetWeights {
    return new UNetWeights(this.weights);
  }

  /** The configuration (without dropout, which inference ignores), then each weight's name, dtype, shape and bytes. */
  *identity(): Iterable<string | Uint8Array> {
    const { dropout: _dropout, ...config } = this.config;
    yield JSON.stringify(config);
    for (const [name, tensor] of this.weights) {
      const dense = tensor.contiguous();
      yield `${name}:${dense.dtype}:${dense.shape.join(',')};`;
      yield new Uint8Array(dense.data.buffer, dense.data.byteOffset + dense.offset * dense.data.BYTES_PER_ELEMENT, dense.size * dense.data.BYTES_PER_ELEMENT);
    }
  }

  /**
   * The block whose output feeds back from decoder block `b`: 2*N_in + 2 - b
   * ({@link feedbackTarget} over this U-Net's blocks).
   *
   * @throws `ConfigError` when `b` is not a decoder block, or its target is not an encoder block
   */
  feedbackTarget(decoderBlock: number): number {
    return feedbackTarget(this.blocks, decoderBlock);
  }

  /** The spec of block `number` (1-based). */
  block(number: number): BlockSpec {
    const spec = this.layout.blocks[number - 1];
    if (!spec) throw new ConfigError(`U-Net: block ${number} is outside 1..${this.blockCount}`);
    return spec;
  }

  /** A checkpoint tensor as a graph weight, converted once per graph and precision. */
  private weight(graph: Graph, name: string, precision: 'float32' | 'float16'): SymbolicTensor {
    return this.cachedWeight(graph, precision === 'float32' ? name : `${name}.${precision}`, () => {
      const value = this.weights.get(name)!;
      return value.dtype === precision ? value : value.cast(precision);
    });
  }

  /**
   * A block convolution's weight quantized symmetrically per output channel
   * (int8 values and float32 scales), computed once per graph: the compiled
   * model (and its cache entry) holds the int8 weights.
   */
  private quantizedWeight(graph: Graph, name: string): { values: SymbolicTensor; scales: SymbolicTensor } {
    let quantized: QuantizedWeight | undefined;
    const quantize = () => {
      const weight = this.weights.get(name)!;
      // A conv1d weight [O, I, 1] runs as a 1x1 convolution [O, I, 1, 1].
      quantized ??= quantizeWeightPerChannel(weight.rank === 3 ? weight.reshape([...weight.shape, 1]) : weight);
      return quantized;
    };
    return {
      values: this.cachedWeight(graph, `${name}.int8`, () => convWeightMatrix(quantize().values)),
      scales: this.cachedWeight(graph, `${name}.int8_scales`, () => quantize().scales),
    };
  }

  /** A conv1d weight [O, I, 1] as a matrix [O, I]. */
  private matrixWeight(graph: Graph, name: string, precision: 'float32' | 'float16'): SymbolicTensor {
    return this.cachedWeight(graph, precision === 'float32' ? `${name}.matrix` : `${name}.matrix.${precision}`, () => {
      const original = this.weights.get(name)!;
      const matrix = original.reshape([original.shape[0]!, original.shape[1]!]);
      return matrix.dtype === precision ? matrix : matrix.cast(precision);
    });
  }

  private cachedWeight(graph: Graph, key: string, value: () => HostTensor): SymbolicTensor {
    let cache = this.graphWeights.get(graph);
    if (!cache) {
      cache = new Map();
      this.graphWeights.set(graph, cache);
    }
    let tensor = cache.get(key);
    if (!tensor) {
      tensor = graph.get(key) ?? graph.weight(key, value());
      cache.set(key, tensor);
    }
    return tensor;
  }

  /** Sinusoidal embedding (cos half, then sin half) and the time MLP, in float32 as the reference. */
  private timeEmbedding(graph: Graph, timesteps: SymbolicTensor, weight: (name: string, precision: 'float32') => SymbolicTensor): SymbolicTensor {
    const dim = this.config.modelChannels;
    const half = Math.floor(dim / 2);
    // torch: exp(-log(max_period) * arange(half, float32) / half), each step rounded to float32.
    const freqs = Array.from({ length: half }, (_, i) => Math.fround(Math.exp(Math.fround(Math.fround(Math.fround(-Math.log(MAX_PERIOD)) * i) / half))));
    const args = mul(reshape(cast(timesteps, 'float32'), [timesteps.shape[0]!, 1]), graph.constant(HostTensor.from('float32', [1, half], freqs)));
    let embedding = concat([cos(args), sin(args)], 1);
    if (dim % 2 === 1) embedding = concat([embedding, mul(slice(embedding, [0], [1], [1]), 0)], 1);
    const w = (name: string) => weight(name, 'float32');
    return linear(silu(linear(embedding, w('time_embed.0.weight'), w('time_embed.0.bias'))), w('time_embed.2.weight'), w('time_embed.2.bias'));
  }
}
