import {
  adaptiveAvgPool2d,
  BatchNorm2d,
  concat,
  ConfigError,
  Conv2d,
  Lambda,
  LayerNorm,
  Linear,
  Module,
  ModuleDict,
  positiveSize,
  Sequential,
  ShapeError,
  RandomGenerator,
  type BuildContext,
  type Layer,
  type SymbolicTensor,
} from '@diffssl/core';
import { AttentionHead, checkChain, parseLayerString, tokensOf, type AttentionHeadConfig } from '@diffssl/pool';

/** Channels and spatial size (square) of one U-Net block's output, from the U-Net's block metadata. @public */
export interface FusionBlockInfo {
  /** Block number (1..N). */
  readonly block: number;
  /** Channels of the block output. */
  readonly channels: number;
  /** Side of the block output. */
  readonly resolution: number;
}

/** Where DifFormer reads block metadata from: any U-Net that describes its numbered blocks (`AdmUNet` does). @public */
export interface BlockMetadataSource {
  /** The channels and resolution of block `number`. */
  block(number: number): {
    /** Channels of the block's output. */
    readonly channels: number;
    /** Spatial size of the block's output (square). */
    readonly resolution: number;
  };
}

/** How DifFormer normalizes each block's pooled map (the reference's `norm_type`). @public */
export type FusionNorm = 'layer' | 'batch';

/** Options of {@link DifFormer} (the reference's arguments in camelCase). @public */
export interface DifFormerOptions {
  /** Metadata of every block read, first or second pass (dims and sizes come from here, never from a table). */
  blocks: readonly FusionBlockInfo[];
  /** Blocks read from the (first) U-Net pass, in token order. */
  firstPassBlocks: readonly number[];
  /** Blocks read from DifFeed's second pass, after the first-pass ones (default none). */
  secondPassBlocks?: readonly number[];
  /** Timesteps whose CLS outputs are concatenated, in order (`t_list`). */
  timesteps: readonly number[];
  /** The attention head over the tokens of one timestep (`fusion_arc`): a layer string or a typed configuration. Its first layer takes tokens. */
  fusion: string | AttentionHeadConfig;
  /** `'layer'` (LayerNorm over [C, s, s], default) or `'batch'` (BatchNorm2d). */
  normType?: FusionNorm;
  /** Pool each block to min(resolution, prePoolSize) (`pre_pool_size`; FM-10k uses 7). */
  prePoolSize: number;
  /** Number of classes. */
  numClasses: number;
  /** Seed of the initialization (default 0), or a generator. */
  seed?: number | RandomGenerator;
}

/**
 * The key of a feature that {@link DifFormer.forward} reads: `t50/block10` for
 * the first pass (the same key as `@diffssl/unet`'s `featureKey`), and
 * `t50/second/block10` for DifFeed's second pass.
 *
 * @public
 */
export function fusionKey(timestep: number, block: number, pass: 'first' | 'second' = 'first'): string {
  return `t${timestep}/${pass === 'second' ? 'second/' : ''}block${String(block).padStart(2, '0')}`;
}

/**
 * DifFormer (the reference's `AttentionFusion`): for each block, adaptive
 * average pooling to min(size, `prePoolSize`), LayerNorm over [C, s, s] (or
 * BatchNorm2d), a 1x1 conv to the attention width, and tokens
 * (`pre_layer.<block>.1` is the norm, `pre_layer.<block>.2` the conv); the
 * tokens of all blocks of one timestep (first-pass blocks, then second-pass
 * blocks) go through one attention head (`intra_inter_block_attention`); the
 * outputs of all timesteps are concatenated and a Linear (`head`) gives the
 * logits.
 *
 * @example
 * ```ts
 * const fusion = DifFormer.fromUNet(unet, {
 *   firstPassBlocks: [8, 9, 10], timesteps: [50, 150], prePoolSize: 7, numClasses: 10,
 *   fusion: 'Use_CLS_Token:True:64,Insert_CLS_Token,Attention:64:4:4:2,Extract_CLS_Token',
 * });
 * const logits = fusion.forward(context, features); // features keyed fusionKey(t, block)
 * ```
 * @public
 */
export class DifFormer extends Module {
  /** Per-block pre-layers, keyed by block number. */
  readonly preLayers: ModuleDict<Sequential>;
  /** The attention head over one timestep's tokens. */
  readonly attention: AttentionHead;
  /** The classifier over the concatenated timestep outputs. */
  readonly classifier: Linear;
  /** Width of the tokens. */
  readonly tokenWidth: number;
  private readonly options: Required<Omit<DifFormerOptions, 'seed'>>;
  private readonly blockInfo: ReadonlyMap<number, FusionBlockInfo>;

  /** @throws `ConfigError` for inconsistent blocks, timesteps, sizes or fusion head */
  constructor(options: DifFormerOptions) {
    super();
    const secondPassBlocks = options.secondPassBlocks ?? [];
    this.options = { ...options, secondPassBlocks, normType: options.normType ?? 'layer' };
    const { blocks, firstPassBlocks, timesteps, prePoolSize, numClasses, normType } = this.options;
    positiveSize('DifFormer', 'prePoolSize', prePoolSize);
    positiveSize('DifFormer', 'numClasses', numClasses);
    if (firstPassBlocks.length + secondPassBlocks.length === 0)
      throw new ConfigError('DifFormer: expected at least one block to read (firstPassBlocks or secondPassBlocks); found none');
    if (timesteps.length === 0) throw new ConfigError('DifFormer: expected at least one timestep; found none');
    if (new Set(timesteps).size !== timesteps.length) throw new ConfigError(`DifFormer: timesteps must be distinct; found [${timesteps.join(', ')}]`);
    if (normType !== 'layer' && normType !== 'batch') throw new ConfigError(`DifFormer: normType must be 'layer' or 'batch'; found '${String(normType)}'`);
    for (const [name, list] of [
      ['firstPassBlocks', firstPassBlocks],
      ['secondPassBlocks', secondPassBlocks],
    ] as const) {
      if (new Set(list).size !== list.length) throw new ConfigError(`DifFormer: ${name} must be distinct; found [${list.join(', ')}]`);
    }
    const config = typeof options.fusion === 'string' ? parseLayerString(options.fusion) : options.fusion;
    const tokenWidth = config.clsToken?.dim ?? config.layers.find((layer) => layer.kind === 'attention')?.dim;
    if (tokenWidth === undefined) throw new ConfigError('DifFormer: the fusion head needs a CLS token or an Attention layer, which set the token width');
    this.tokenWidth = tokenWidth;
    const outputWidth = checkChain(config, tokenWidth, 'tokens');
    if (outputWidth === undefined)
      throw new ConfigError('DifFormer: the fusion head must end in vectors of a known width (for example with Extract_CLS_Token or FullyPool)');
    const generator = RandomGenerator.from(options.seed);
    const info = new Map(blocks.map((block) => [block.block, block]));
    const used = [...new Set([...firstPassBlocks, ...secondPassBlocks])].sort((a, b) => a - b);
    this.preLayers = this.registerModule('pre_layer', new ModuleDict<Sequential>());
    for (const block of used) {
      const meta = info.get(block);
      if (!meta) throw new ConfigError(`DifFormer: no metadata for block ${block}; blocks given: ${[...info.keys()].join(', ') || 'none'}`);
      positiveSize('DifFormer', `channels of block ${block}`, meta.channels);
      positiveSize('DifFormer', `resolution of block ${block}`, meta.resolution);
      const size = Math.min(meta.resolution, prePoolSize);
      const norm: Layer = normType === 'batch' ? new BatchNorm2d(meta.channels) : new LayerNorm([meta.channels, size, size]);
      this.preLayers.set(
        String(block),
        new Sequential([
          new Lambda('AdaptiveAvgPool2d', (_context, x) => adaptiveAvgPool2d(x, size)),
          norm,
          new Conv2d(meta.channels, tokenWidth, generator, { kernelSize: 1 }),
          new Lambda('Rearrange', (_context, x) => tokensOf(x)),
        ]),
      );
    }
    this.attention = this.registerModule('intra_inter_block_attention', new AttentionHead(config, { seed: generator }));
    this.classifier = this.registerModule('head', new Linear(outputWidth * timesteps.length, numClasses, generator));
    this.blockInfo = info;
  }

  /**
   * Builds DifFormer for a U-Net, reading each block's channels and size from
   * its metadata.
   *
   * @param unet - any U-Net with block metadata (for example `AdmUNet`)
   * @param options - as {@link DifFormerOptions}, without `blocks`
   */
  static fromUNet(unet: BlockMetadataSource, options: Omit<DifFormerOptions, 'blocks'>): DifFormer {
    const numbers = [...new Set([...options.firstPassBlocks, ...(options.secondPassBlocks ?? [])])];
    return new DifFormer({ ...options, blocks: numbers.map((block) => ({ block, ...pick(unet.block(block)) })) });
  }

  /** The timesteps, first-pass and second-pass blocks this fusion reads. */
  get reads(): {
    /** The timesteps. */
    timesteps: readonly number[];
    /** Blocks read from the U-Net's first (plain) pass. */
    firstPassBlocks: readonly number[];
    /** Blocks read from DifFeed's second (feedback) pass. */
    secondPassBlocks: readonly number[];
  } {
    return { timesteps: this.options.timesteps, firstPassBlocks: this.options.firstPassBlocks, secondPassBlocks: this.options.secondPassBlocks };
  }

  /** The feature keys {@link DifFormer.forward} needs, in order (see {@link fusionKey}). */
  featureKeys(): string[] {
    const { timesteps, firstPassBlocks, secondPassBlocks } = this.options;
    return timesteps.flatMap((t) => [...firstPassBlocks.map((b) => fusionKey(t, b)), ...secondPassBlocks.map((b) => fusionKey(t, b, 'second'))]);
  }

  /**
   * Logits [B, numClasses] from block features.
   *
   * @param features - [B, C, h, w] per {@link fusionKey} (every key of {@link DifFormer.featureKeys})
   * @throws `ConfigError` for a missing feature; `ShapeError` for a feature whose channels or size differ from the block metadata
   */
  forward(context: BuildContext, features: ReadonlyMap<string, SymbolicTensor>): SymbolicTensor {
    const { timesteps, firstPassBlocks, secondPassBlocks } = this.options;
    const outputs = timesteps.map((t) => {
      const read = (block: number, pass: 'first' | 'second') => {
        const key = fusionKey(t, block, pass);
        const x = features.get(key);
        if (!x) throw new ConfigError(`DifFormer: missing feature '${key}'; given: ${[...features.keys()].join(', ') || 'none'}`);
        const meta = this.blockInfo.get(block)!;
        if (x.rank !== 4 || x.shape[1] !== meta.channels || x.shape[2] !== meta.resolution || x.shape[3] !== meta.resolution) {
          throw new ShapeError(
            `DifFormer: feature '${key}' must be [batch, ${meta.channels}, ${meta.resolution}, ${meta.resolution}] (block ${block}'s metadata); found [${x.shape.join(', ')}]`,
          );
        }
        return this.preLayers.get(String(block)).forward(context, x);
      };
      const tokens = [...firstPassBlocks.map((b) => read(b, 'first')), ...secondPassBlocks.map((b) => read(b, 'second'))];
      return this.attention.forward(context, concat(tokens, 1));
    });
    return this.classifier.forward(context, concat(outputs, 1));
  }
}

function pick(spec: { readonly channels: number; readonly resolution: number }): { channels: number; resolution: number } {
  return { channels: spec.channels, resolution: spec.resolution };
}
