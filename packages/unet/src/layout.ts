import type { AdmConfig } from './config.js';

/** One layer inside a U-Net block, as guided-diffusion builds it. */
export type LayerSpec =
  | { kind: 'conv'; prefix: string; inChannels: number; outChannels: number }
  | { kind: 'resblock'; prefix: string; inChannels: number; outChannels: number; resample: 'up' | 'down' | 'none' }
  | { kind: 'attention'; prefix: string; channels: number; heads: number }
  | { kind: 'downsample'; prefix: string; channels: number }
  | { kind: 'upsample'; prefix: string; channels: number };

/** One numbered block (1..N): an encoder input block, the middle block or a decoder output block. @public */
export interface BlockSpec {
  /** 1-based block number. */
  readonly number: number;
  readonly part: 'encoder' | 'middle' | 'decoder';
  /** Index within `input_blocks` / `output_blocks` (0 for the middle block). */
  readonly moduleIndex: number;
  /** Channels of the block's output. */
  readonly channels: number;
  /** Spatial size of the block's output (square). */
  readonly resolution: number;
  /** @internal */
  readonly layers: readonly LayerSpec[];
  /** Channels of the skip connection concatenated before a decoder block. */
  readonly skipChannels: number;
}

/** The block structure of an ADM U-Net. @public */
export interface UNetLayout {
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
  blocks.push({ number: 1, part: 'encoder', moduleIndex: 0, channels: ch, resolution, skipChannels: 0, layers: [{ kind: 'conv', prefix: 'input_blocks.0.0', inChannels: config.inChannels, outChannels: ch }] });
  config.channelMult.forEach((mult, level) => {
    for (let r = 0; r < config.numResBlocks; r++) {
      const index = blocks.length;
      const out = Math.trunc(mult * mc);
      const layers: LayerSpec[] = [{ kind: 'resblock', prefix: `input_blocks.${index}.0`, inChannels: ch, outChannels: out, resample: 'none' }];
      ch = out;
      if (config.attentionDownsampleFactors.includes(ds)) layers.push({ kind: 'attention', prefix: `input_blocks.${index}.1`, channels: ch, heads: headsFor(config, ch, false) });
      blocks.push({ number: index + 1, part: 'encoder', moduleIndex: index, channels: ch, resolution, skipChannels: 0, layers });
      skipChannels.push(ch);
    }
    if (level !== config.channelMult.length - 1) {
      const index = blocks.length;
      const layer: LayerSpec = config.resblockUpdown
        ? { kind: 'resblock', prefix: `input_blocks.${index}.0`, inChannels: ch, outChannels: ch, resample: 'down' }
        : { kind: 'downsample', prefix: `input_blocks.${index}.0`, channels: ch };
      resolution /= 2;
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
      { kind: 'resblock', prefix: 'middle_block.0', inChannels: ch, outChannels: ch, resample: 'none' },
      { kind: 'attention', prefix: 'middle_block.1', channels: ch, heads: headsFor(config, ch, false) },
      { kind: 'resblock', prefix: 'middle_block.2', inChannels: ch, outChannels: ch, resample: 'none' },
    ],
  });
  let outputIndex = 0;
  [...config.channelMult.entries()].reverse().forEach(([level, mult]) => {
    for (let i = 0; i <= config.numResBlocks; i++) {
      const skip = skipChannels.pop()!;
      const out = Math.trunc(mc * mult);
      const prefix = `output_blocks.${outputIndex}`;
      const layers: LayerSpec[] = [{ kind: 'resblock', prefix: `${prefix}.0`, inChannels: ch + skip, outChannels: out, resample: 'none' }];
      ch = out;
      if (config.attentionDownsampleFactors.includes(ds)) layers.push({ kind: 'attention', prefix: `${prefix}.1`, channels: ch, heads: headsFor(config, ch, true) });
      if (level > 0 && i === config.numResBlocks) {
        const layerPrefix = `${prefix}.${layers.length}`;
        layers.push(config.resblockUpdown ? { kind: 'resblock', prefix: layerPrefix, inChannels: ch, outChannels: ch, resample: 'up' } : { kind: 'upsample', prefix: layerPrefix, channels: ch });
        ds /= 2;
        resolution *= 2;
      }
      blocks.push({ number: blocks.length + 1, part: 'decoder', moduleIndex: outputIndex, channels: ch, resolution, skipChannels: skip, layers });
      outputIndex++;
    }
  });
  return { blocks, encoderBlocks, finalChannels: ch, inputChannels };
}

/**
 * The parameter names and shapes a checkpoint of this configuration holds
 * (guided-diffusion's `state_dict` keys).
 *
 * @public
 */
export function expectedWeights(config: AdmConfig): Map<string, number[]> {
  const layout = unetLayout(config);
  const mc = config.modelChannels;
  const embed = 4 * mc;
  const weights = new Map<string, number[]>();
  const add = (name: string, shape: number[]) => weights.set(name, shape);
  add('time_embed.0.weight', [embed, mc]);
  add('time_embed.0.bias', [embed]);
  add('time_embed.2.weight', [embed, embed]);
  add('time_embed.2.bias', [embed]);
  if (config.numClasses) add('label_emb.weight', [config.numClasses, embed]);
  for (const block of layout.blocks) {
    for (const layer of block.layers) {
      const p = layer.prefix;
      switch (layer.kind) {
        case 'conv':
          add(`${p}.weight`, [layer.outChannels, layer.inChannels, 3, 3]);
          add(`${p}.bias`, [layer.outChannels]);
          break;
        case 'resblock':
          add(`${p}.in_layers.0.weight`, [layer.inChannels]);
          add(`${p}.in_layers.0.bias`, [layer.inChannels]);
          add(`${p}.in_layers.2.weight`, [layer.outChannels, layer.inChannels, 3, 3]);
          add(`${p}.in_layers.2.bias`, [layer.outChannels]);
          add(`${p}.emb_layers.1.weight`, [(config.useScaleShiftNorm ? 2 : 1) * layer.outChannels, embed]);
          add(`${p}.emb_layers.1.bias`, [(config.useScaleShiftNorm ? 2 : 1) * layer.outChannels]);
          add(`${p}.out_layers.0.weight`, [layer.outChannels]);
          add(`${p}.out_layers.0.bias`, [layer.outChannels]);
          add(`${p}.out_layers.3.weight`, [layer.outChannels, layer.outChannels, 3, 3]);
          add(`${p}.out_layers.3.bias`, [layer.outChannels]);
          if (layer.outChannels !== layer.inChannels) {
            add(`${p}.skip_connection.weight`, [layer.outChannels, layer.inChannels, 1, 1]);
            add(`${p}.skip_connection.bias`, [layer.outChannels]);
          }
          break;
        case 'attention':
          add(`${p}.norm.weight`, [layer.channels]);
          add(`${p}.norm.bias`, [layer.channels]);
          add(`${p}.qkv.weight`, [3 * layer.channels, layer.channels, 1]);
          add(`${p}.qkv.bias`, [3 * layer.channels]);
          add(`${p}.proj_out.weight`, [layer.channels, layer.channels, 1]);
          add(`${p}.proj_out.bias`, [layer.channels]);
          break;
        case 'downsample':
          add(`${p}.op.weight`, [layer.channels, layer.channels, 3, 3]);
          add(`${p}.op.bias`, [layer.channels]);
          break;
        case 'upsample':
          add(`${p}.conv.weight`, [layer.channels, layer.channels, 3, 3]);
          add(`${p}.conv.bias`, [layer.channels]);
          break;
      }
    }
  }
  add('out.0.weight', [layout.finalChannels]);
  add('out.0.bias', [layout.finalChannels]);
  add('out.2.weight', [config.outChannels, layout.inputChannels, 3, 3]);
  add('out.2.bias', [config.outChannels]);
  return weights;
}
