import type { AdmConfig } from './config.js';
import { ConfigError, init, RandomGenerator, type HostTensor } from '@diffssl/core';
import { fanIn, float32, groupNormWeights, layerKind, type LayerFacts, type WeightSpec } from './layer-kinds.js';

/**
 * One layer inside a U-Net block, as guided-diffusion builds it;
 * `resolution` is the (square) spatial size of the layer's output.
 */
export type LayerSpec =
  | { kind: 'conv'; prefix: string; resolution: number; inChannels: number; outChannels: number }
  | { kind: 'resblock'; prefix: string; resolution: number; inChannels: number; outChannels: number; resample: 'up' | 'down' | 'none' }
  | { kind: 'attention'; prefix: string; resolution: number; channels: number; heads: number }
  | { kind: 'downsample'; prefix: string; resolution: number; channels: number }
  | { kind: 'upsample'; prefix: string; resolution: number; channels: number };

/**
 * One numbered block of a diffusion U-Net (1..N): an encoder block, the middle
 * block or a decoder block, with the shape of its output. @public
 */
export interface UNetBlock {
  /** 1-based block number. */
  readonly number: number;
  /** Where the block sits: an encoder (input) block, the middle block or a decoder (output) block. */
  readonly part: 'encoder' | 'middle' | 'decoder';
  /** Channels of the block's output. */
  readonly channels: number;
  /** Spatial size of the block's output (square). */
  readonly resolution: number;
}

/**
 * The encoder block that decoder block `b` feeds back into (DifFeed): 2*N_in +
 * 2 - b, N_in the number of encoder blocks (38 - b for the 37-block layout,
 * 20 - b for the 19-block one).
 *
 * @param blocks - the U-Net's numbered blocks 1..N in order (a U-Net's `blocks`)
 * @param decoderBlock - the decoder block b
 * @returns the target encoder block's number
 * @throws `ConfigError` when `b` is not a decoder block, or its target is not an encoder block
 * @example
 * ```ts
 * feedbackTarget(unet.blocks, 24); // 14 for the 256x256 model's 37 blocks
 * ```
 * @public
 */
export function feedbackTarget(blocks: readonly UNetBlock[], decoderBlock: number): number {
  const encoderBlocks = blocks.filter((block) => block.part === 'encoder').length;
  const spec = blocks[decoderBlock - 1];
  if (!spec || spec.part !== 'decoder') throw new ConfigError(`U-Net: block ${decoderBlock} is not a decoder block (${encoderBlocks + 2}..${blocks.length})`);
  const target = 2 * encoderBlocks + 2 - decoderBlock;
  if (blocks[target - 1]?.part !== 'encoder')
    throw new ConfigError(`U-Net: decoder block ${decoderBlock} would feed block ${target}, which is not an encoder block`);
  return target;
}

/** One numbered block (1..N) of an ADM U-Net: an encoder input block, the middle block or a decoder output block. @public */
export interface BlockSpec extends UNetBlock {
  /** Index within `input_blocks` / `output_blocks` (0 for the middle block). */
  readonly moduleIndex: number;
  /** @internal */
  readonly layers: readonly LayerSpec[];
  /** Channels of the skip connection concatenated before a decoder block. */
  readonly skipChannels: number;
}

/** The block structure of an ADM U-Net. @public */
export interface UNetLayout {
  /** Every numbered block in order: `blocks[i]` is block `i + 1`. */
  readonly blocks: readonly BlockSpec[];
  /** Number of encoder (input) blocks: N_in. */
  readonly encoderBlocks: number;
  /** Channels entering the output head. */
  readonly finalChannels: number;
  /** Channels of the first conv (`input_ch`). */
  readonly inputChannels: number;
}

function headsFor(config: AdmConfig, channels: number, upsample: boolean): number {
  if (config.numHeadChannels !== -1) return Math.floor(channels / config.numHeadChannels);
  return upsample ? config.numHeadsUpsample : config.numHeads;
}

/**
 * Lays out the blocks exactly as guided-diffusion's `UNetModel.__init__`.
 *
 * @public
 */
export function unetLayout(config: AdmConfig): UNetLayout {
  const blocks: BlockSpec[] = [];
  const mc = config.modelChannels;
  let ch = Math.trunc(config.channelMult[0]! * mc);
  const inputChannels = ch;
  let resolution = config.imageSize;
  let ds = 1;
  const skipChannels = [ch];
  blocks.push({
    number: 1,
    part: 'encoder',
    moduleIndex: 0,
    channels: ch,
    resolution,
    skipChannels: 0,
    layers: [{ kind: 'conv', prefix: 'input_blocks.0.0', resolution, inChannels: config.inChannels, outChannels: ch }],
  });
  config.channelMult.forEach((mult, level) => {
    for (let r = 0; r < config.numResBlocks; r++) {
      const index = blocks.length;
      const out = Math.trunc(mult * mc);
      const layers: LayerSpec[] = [{ kind: 'resblock', prefix: `input_blocks.${index}.0`, resolution, inChannels: ch, outChannels: out, resample: 'none' }];
      ch = out;
      if (config.attentionDownsampleFactors.includes(ds))
        layers.push({ kind: 'attention', prefix: `input_blocks.${index}.1`, resolution, channels: ch, heads: headsFor(config, ch, false) });
      blocks.push({ number: index + 1, part: 'encoder', moduleIndex: index, channels: ch, resolution, skipChannels: 0, layers });
      skipChannels.push(ch);
    }
    if (level !== config.channelMult.length - 1) {
      const index = blocks.length;
      resolution /= 2;
      const layer: LayerSpec = config.resblockUpdown
        ? { kind: 'resblock', prefix: `input_blocks.${index}.0`, resolution, inChannels: ch, outChannels: ch, resample: 'down' }
        : { kind: 'downsample', prefix: `input_blocks.${index}.0`, resolution, channels: ch };
      ds *= 2;
      blocks.push({ number: index + 1, part: 'encoder', moduleIndex: index, channels: ch, resolution, skipChannels: 0, layers: [layer] });
      skipChannels.push(ch);
    }
  });
  const encoderBlocks = blocks.length;
  blocks.push({
    number: encoderBlocks + 1,
    part: 'middle',
    moduleIndex: 0,
    channels: ch,
    resolution,
    skipChannels: 0,
    layers: [
      { kind: 'resblock', prefix: 'middle_block.0', resolution, inChannels: ch, outChannels: ch, resample: 'none' },
      { kind: 'attention', prefix: 'middle_block.1', resolution, channels: ch, heads: headsFor(config, ch, false) },
      { kind: 'resblock', prefix: 'middle_block.2', resolution, inChannels: ch, outChannels: ch, resample: 'none' },
    ],
  });
  let outputIndex = 0;
  [...config.channelMult.entries()].reverse().forEach(([level, mult]) => {
    for (let i = 0; i <= config.numResBlocks; i++) {
      const skip = skipChannels.pop()!;
      const out = Math.trunc(mc * mult);
      const prefix = `output_blocks.${outputIndex}`;
      const layers: LayerSpec[] = [{ kind: 'resblock', prefix: `${prefix}.0`, resolution, inChannels: ch + skip, outChannels: out, resample: 'none' }];
      ch = out;
      if (config.attentionDownsampleFactors.includes(ds))
        layers.push({ kind: 'attention', prefix: `${prefix}.1`, resolution, channels: ch, heads: headsFor(config, ch, true) });
      if (level > 0 && i === config.numResBlocks) {
        const layerPrefix = `${prefix}.${layers.length}`;
        ds /= 2;
        resolution *= 2;
        layers.push(
          config.resblockUpdown
            ? { kind: 'resblock', prefix: layerPrefix, resolution, inChannels: ch, outChannels: ch, resample: 'up' }
            : { kind: 'upsample', prefix: layerPrefix, resolution, channels: ch },
        );
      }
      blocks.push({ number: blocks.length + 1, part: 'decoder', moduleIndex: outputIndex, channels: ch, resolution, skipChannels: skip, layers });
      outputIndex++;
    }
  });
  return { blocks, encoderBlocks, finalChannels: ch, inputChannels };
}

/** The configuration facts the layer kinds need. */
export function layerFacts(config: AdmConfig): LayerFacts {
  return { embedChannels: 4 * config.modelChannels, useScaleShiftNorm: config.useScaleShiftNorm, useNewAttentionOrder: config.useNewAttentionOrder };
}

/**
 * Every state-dict tensor of this configuration with its shape and precision
 * under float16 (`compute`: the block convolutions guided-diffusion's
 * `convert_to_fp16` converts; `float32`: embeddings, normalization and the
 * `out` head, which guided-diffusion keeps in float32).
 */
export function weightSpecs(config: AdmConfig): WeightSpec[] {
  const layout = unetLayout(config);
  const facts = layerFacts(config);
  const mc = config.modelChannels;
  const embed = facts.embedChannels;
  const specs: WeightSpec[] = [
    float32('time_embed.0.weight', [embed, mc], fanIn(mc)),
    float32('time_embed.0.bias', [embed], fanIn(mc)),
    float32('time_embed.2.weight', [embed, embed], fanIn(embed)),
    float32('time_embed.2.bias', [embed], fanIn(embed)),
  ];
  if (config.numClasses !== undefined) specs.push(float32('label_emb.weight', [config.numClasses, embed], { kind: 'normal' }));
  for (const block of layout.blocks) for (const layer of block.layers) specs.push(...layerKind(layer).weights(layer, facts));
  specs.push(
    ...groupNormWeights('out.0', layout.finalChannels),
    // guided-diffusion wraps the output conv in zero_module.
    float32('out.2.weight', [config.outChannels, layout.inputChannels, 3, 3], { kind: 'zeros' }),
    float32('out.2.bias', [config.outChannels], { kind: 'zeros' }),
  );
  return specs;
}

/**
 * The weights of a freshly built guided-diffusion U-Net of this
 * configuration, as `UNetModel.__init__` initializes them (PyTorch's default
 * for Linear and Conv layers, zeros where guided-diffusion's `zero_module`
 * wraps a layer: each ResBlock's last conv, each attention's `proj_out` and
 * the output conv; GroupNorm ones and zeros; `label_emb` standard normal),
 * drawn from a seeded generator: the same distributions, not PyTorch's
 * random stream. The paper's "random U-Net" baseline.
 *
 * @param config - the resolved configuration
 * @param seed - the generator's seed
 * @returns float32 tensors by state-dict name
 * @public
 */
export function initialAdmWeights(config: AdmConfig, seed: number): Map<string, HostTensor> {
  const generator = new RandomGenerator(seed);
  const weights = new Map<string, HostTensor>();
  for (const spec of weightSpecs(config)) {
    const { init: rule, shape } = spec;
    const value =
      rule.kind === 'fanIn'
        ? init.fanIn(shape, rule.fanIn, generator)
        : rule.kind === 'normal'
          ? init.normal(shape, 1, generator)
          : rule.kind === 'ones'
            ? init.ones(shape)
            : init.zeros(shape);
    weights.set(spec.name, value);
  }
  return weights;
}

/**
 * The parameter names and shapes a checkpoint of this configuration holds
 * (guided-diffusion's `state_dict` keys).
 *
 * @public
 */
export function expectedWeights(config: AdmConfig): Map<string, number[]> {
  return new Map(weightSpecs(config).map((spec) => [spec.name, [...spec.shape]]));
}
