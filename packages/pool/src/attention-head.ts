import {
  avgPool2d,
  broadcastTo,
  concat,
  ConfigError,
  init,
  Lambda,
  Layer,
  Linear,
  mean,
  RandomGenerator,
  reshape,
  ReLU,
  Sequential,
  ShapeError,
  Sigmoid,
  slice,
  Tanh,
  transpose,
  type BuildContext,
  type LoadStateDictOptions,
  type ModuleTensor,
  type SymbolicTensor,
} from '@diffssl/core';
import { checkChain, inputKindOf, parseLayerString, type AttentionHeadConfig, type HeadLayerSpec } from './layer-string.js';
import { TransformerBlock } from './transformer-block.js';

/** Options of {@link AttentionHead}. @public */
export interface AttentionHeadOptions {
  /** Seed of the initialization (default 0), or a generator to draw from. */
  seed?: number | RandomGenerator;
}

/**
 * The reference's `AttentionHead`: a sequence of layers built from a typed
 * configuration or from its layer string (the paper's "attention head"
 * protocol wraps it in a one-block `DifFormer`, which adds the per-block
 * pooling, norm and token projection and the classifier), numbered as its `nn.Sequential`
 * numbers them (`layers.1.attn.qkv.weight`; a `Dense` with an activation takes
 * two indices, an `Attention` with n blocks takes n), with the CLS token
 * `cls_token` [1, 1, dim] starting at zeros.
 *
 * @example
 * ```ts
 * const head = AttentionHead.fromLayerString('Use_CLS_Token:True:64,Insert_CLS_Token,Attention:64:4:4:2,Extract_CLS_Token', { seed: 1 });
 * const features = head.forward(context, tokens); // [B, 64]
 * ```
 * @public
 */
export class AttentionHead extends Layer {
  /** The configuration. */
  readonly config: AttentionHeadConfig;
  /** The CLS token, when the configuration uses one. */
  readonly clsToken: ModuleTensor | undefined;
  /** The layers (`layers.<index>`). */
  readonly layers: Sequential;

  /**
   * @param config - the typed configuration (see {@link parseLayerString} for the string form)
   * @param options - initialization seed
   * @throws `ConfigError` for a configuration whose widths do not chain
   */
  constructor(config: AttentionHeadConfig, options: AttentionHeadOptions = {}) {
    super();
    checkChain(config, undefined);
    this.config = config;
    const generator = RandomGenerator.from(options.seed);
    this.clsToken = config.clsToken ? this.registerParameter('cls_token', init.zeros([1, 1, config.clsToken.dim])) : undefined;
    this.layers = this.registerModule('layers', new Sequential());
    for (const layer of config.layers) for (const built of this.buildLayer(layer, generator)) this.layers.append(built);
  }

  /**
   * Builds a head from the reference's layer string (parsed strictly).
   *
   * @throws `ConfigError` quoting the offending entry
   */
  static fromLayerString(layerString: string, options: AttentionHeadOptions = {}): AttentionHead {
    return new AttentionHead(parseLayerString(layerString), options);
  }

  /** Width of the output when the input has `inputChannels` channels (or token width, when the first layer takes tokens). */
  outputWidth(inputChannels: number): number | undefined {
    return checkChain(this.config, inputChannels);
  }

  private buildLayer(layer: HeadLayerSpec, generator: RandomGenerator): Layer[] {
    switch (layer.kind) {
      case 'pool':
        return [new Lambda('Pool', (_c, x) => avgPool2d(x, layer.kernel, { stride: layer.stride }))];
      case 'reshape':
        return [new Lambda('Reshape', (_c, x) => tokensOf(x))];
      case 'insertClsToken':
        return [new Lambda('Insert_CLS_Token', (context, x) => concat([broadcastTo(context.weight(this.clsToken!), [x.shape[0]!, 1, x.shape[2]!]), x], 1))];
      case 'attention':
        return Array.from({ length: layer.blocks }, () => new TransformerBlock(layer.dim, layer.heads, layer.mlpRatio, generator));
      case 'extractClsToken':
        return [new Lambda('Extract_CLS_Token', (_c, x) => reshape(slice(x, [0], [1], [1]), [x.shape[0]!, x.shape[2]!]))];
      case 'fullyPool':
        return [new Lambda('FullyPool', (_c, x) => mean(x, 1))];
      case 'flatten':
        return [new Lambda('Flatten', (_c, x) => reshape(x, [x.shape[0]!, -1]))];
      case 'dense': {
        const linear = new Linear(layer.inFeatures, layer.outFeatures, generator);
        const activation = { relu: ReLU, sigmoid: Sigmoid, tanh: Tanh, identity: undefined }[layer.activation];
        return activation ? [linear, activation()] : [linear];
      }
    }
  }

  /**
   * Applies the head to a feature map [B, C, H, W] (or to tokens [B, N, D]
   * when the first layer takes tokens).
   *
   * @throws `ShapeError` when the input does not fit the first layers
   */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    const first = this.config.layers[0]!;
    const takesTokens = inputKindOf(this.config) === 'tokens';
    if (takesTokens ? x.rank !== 3 : first.kind !== 'flatten' && x.rank !== 4) {
      throw new ShapeError(
        `AttentionHead: the first layer (${first.kind}) expects ${takesTokens ? 'tokens [B, N, D]' : 'a feature map [B, C, H, W]'}; found [${x.shape.join(', ')}]`,
      );
    }
    const width = x.shape[takesTokens ? 2 : 1];
    if (typeof width === 'number') {
      try {
        checkChain(this.config, width);
      } catch (error) {
        throw new ShapeError(`AttentionHead: input [${x.shape.join(', ')}] does not fit: ${(error as Error).message}`);
      }
    }
    return this.layers.forward(context, x);
  }

  /**
   * Loads weights by the reference's names. The reference creates a
   * `cls_token` for every layer string (it reads the first entry as a CLS flag
   * even when it is not one); such an unused `cls_token` is accepted and
   * ignored when this head has no CLS token.
   */
  override loadStateDict(tensors: Parameters<Layer['loadStateDict']>[0], options: LoadStateDictOptions = {}): void {
    const allow = options.allowUnexpected;
    super.loadStateDict(tensors, { ...options, allowUnexpected: (name) => (name === 'cls_token' && !this.clsToken) || (allow?.(name) ?? false) });
  }
}

/** `rearrange(x, 'b c h w -> b (h w) c')`. @public */
export function tokensOf(x: SymbolicTensor): SymbolicTensor {
  if (x.rank !== 4) throw new ConfigError(`tokensOf: expected a feature map [B, C, H, W]; found [${x.shape.join(', ')}]`);
  const [batch, channels, height, width] = x.shape as [string | number, number, number, number];
  return transpose(reshape(x, [batch, channels, height * width]), [0, 2, 1]);
}
