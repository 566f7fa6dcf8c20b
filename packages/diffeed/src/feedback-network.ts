import { BatchNorm2d, ConfigError, Conv2d, GroupNorm, ReLU, Sequential, SiLU, type Layer, type RandomGenerator } from '@diffssl/core';

/**
 * One layer of a feedback network, as the reference's arch strings name them:
 * `C` (conv), `C2` (depthwise conv, or the closing 1x1 conv), `B` (BatchNorm2d),
 * `R` (ReLU), `S` (SiLU), `G` (GroupNorm with 32 groups).
 *
 * @public
 */
export type FeedbackLayerToken = 'C' | 'C2' | 'B' | 'R' | 'S' | 'G';

const TOKENS: readonly string[] = ['C', 'C2', 'B', 'R', 'S', 'G'];
const GRAMMAR =
  "tokens joined by '_': C (first: 1x1 conv to the target channels; later: depthwise 3x3), C2 (depthwise 3x3; last: 1x1 conv to the target channels), B (BatchNorm2d), R (ReLU), S (SiLU), G (GroupNorm(32))";

/**
 * Parses a feedback arch string (`C_B_R`).
 *
 * `Res` is refused: the reference would build guided-diffusion's ResBlock,
 * whose forward needs a timestep embedding that `nn.Sequential` never passes,
 * so the reference cannot run it either.
 *
 * @throws `ConfigError` quoting the offending token and listing the valid ones
 * @public
 */
export function parseFeedbackArch(arch: string): FeedbackLayerToken[] {
  if (typeof arch !== 'string' || arch.trim() === '') throw new ConfigError(`feedback arch: expected ${GRAMMAR}; found ${JSON.stringify(arch)}`);
  return arch.split('_').map((token, index) => {
    if (token === 'Res') {
      throw new ConfigError(
        `feedback arch '${arch}': token ${index} 'Res' is not supported: guided-diffusion's ResBlock needs a timestep embedding that nn.Sequential does not pass, so the reference cannot run it either; use ${GRAMMAR}`,
      );
    }
    if (!TOKENS.includes(token)) throw new ConfigError(`feedback arch '${arch}': token ${index} '${token}' is unknown; expected ${GRAMMAR}`);
    return token as FeedbackLayerToken;
  });
}

/**
 * A feedback network: the layers of an arch string in `nn.Sequential` order
 * (`<index>.weight`), mapping a decoder block's output (source channels) to
 * what is added to an encoder block (target channels). Convolutions have no
 * bias, as the reference's.
 *
 * @public
 */
export class FeedbackNetwork extends Sequential {
  /** The parsed tokens. */
  readonly tokens: readonly FeedbackLayerToken[];

  /**
   * @param arch - the arch string (`C_B_R`)
   * @param sourceChannels - channels of the decoder block it reads
   * @param targetChannels - channels of the encoder block it feeds
   * @param generator - draws the initial convolution weights
   * @throws `ConfigError` for a bad arch, or one that does not end at the target channels
   */
  constructor(arch: string, sourceChannels: number, targetChannels: number, generator: RandomGenerator) {
    super();
    this.tokens = parseFeedbackArch(arch);
    let channels = sourceChannels;
    this.tokens.forEach((token, index) => {
      const first = index === 0;
      const last = index === this.tokens.length - 1;
      let layer: Layer;
      switch (token) {
        case 'C':
        case 'C2': {
          // C maps to the target channels in first position, C2 in last; elsewhere both are depthwise 3x3.
          const toTarget = token === 'C' ? first : last;
          layer = toTarget
            ? new Conv2d(channels, targetChannels, generator, { kernelSize: 1, bias: false })
            : new Conv2d(channels, channels, generator, { kernelSize: 3, padding: 1, groups: channels, bias: false });
          if (toTarget) channels = targetChannels;
          break;
        }
        case 'B':
          layer = new BatchNorm2d(channels);
          break;
        case 'R':
          layer = ReLU();
          break;
        case 'S':
          layer = SiLU();
          break;
        case 'G':
          if (channels % 32 !== 0)
            throw new ConfigError(`feedback arch '${arch}': G (GroupNorm(32)) at token ${index} needs channels divisible by 32; found ${channels}`);
          layer = new GroupNorm(32, channels);
          break;
      }
      this.append(layer);
    });
    if (channels !== targetChannels) {
      throw new ConfigError(
        `feedback arch '${arch}': the network ends with ${channels} channels but the target block has ${targetChannels}; start with C (1x1 conv to the target) or end with C2`,
      );
    }
  }
}
