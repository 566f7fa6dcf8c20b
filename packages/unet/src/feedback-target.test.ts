import { ConfigError } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { AdmUNet, admConfig, feedbackTarget, initialAdmWeights, unetLayout, type UNetBlock } from './index.js';

describe('feedbackTarget (DifFeed: decoder block b feeds encoder block 2*N_in + 2 - b)', () => {
  it("maps the paper's 256x256 feedback blocks 21, 24, ..., 36 onto encoder blocks 17, 14, ..., 2", () => {
    const blocks = unetLayout(admConfig('256x256_diffusion_uncond')).blocks;
    expect(blocks).toHaveLength(37);
    // The paper's table (docs/guides/paper-settings.md), written out rather than computed.
    expect([21, 24, 27, 30, 33, 36].map((b) => feedbackTarget(blocks, b))).toEqual([17, 14, 11, 8, 5, 2]);
    expect(feedbackTarget(blocks, 20)).toBe(18);
    expect(feedbackTarget(blocks, 37)).toBe(1);
  });

  it('refuses an encoder block, the middle block and a block outside the U-Net', () => {
    const blocks = unetLayout(admConfig('256x256_diffusion_uncond')).blocks;
    for (const b of [5, 18, 19, 0, 38])
      expect(() => feedbackTarget(blocks, b), `block ${b}`).toThrow(new RegExp(`block ${b} is not a decoder block \\(20\\.\\.37\\)`));
    expect(() => feedbackTarget(blocks, 19)).toThrow(ConfigError);
  });

  it('refuses a decoder block whose target is not an encoder block (a U-Net with more decoder than encoder blocks)', () => {
    const block = (number: number, part: UNetBlock['part']): UNetBlock => ({ number, part, channels: 8, resolution: 4 });
    // 2 encoder blocks, the middle block, 3 decoder blocks: 2*2 + 2 - 6 = 0 is no block.
    const blocks = [block(1, 'encoder'), block(2, 'encoder'), block(3, 'middle'), block(4, 'decoder'), block(5, 'decoder'), block(6, 'decoder')];
    expect(feedbackTarget(blocks, 4)).toBe(2);
    expect(feedbackTarget(blocks, 5)).toBe(1);
    expect(() => feedbackTarget(blocks, 6)).toThrow(/decoder block 6 would feed block 0, which is not an encoder block/);
  });

  it('is what AdmUNet.feedbackTarget answers, errors included', () => {
    const config = admConfig({ image_size: 16, num_channels: 32, num_res_blocks: 1, channel_mult: '1,2', attention_resolutions: '8', num_head_channels: 32 });
    const unet = new AdmUNet(config, initialAdmWeights(config, 0));
    // 9 blocks: encoder 1-4, middle 5, decoder 6-9, so b feeds 10 - b.
    expect(unet.blocks.map((block) => block.part).join()).toBe('encoder,encoder,encoder,encoder,middle,decoder,decoder,decoder,decoder');
    expect([6, 7, 8, 9].map((b) => unet.feedbackTarget(b))).toEqual([4, 3, 2, 1]);
    expect(() => unet.feedbackTarget(5)).toThrow(/block 5 is not a decoder block \(6\.\.9\)/);
  });
});
