import { ConfigError } from '@diffssl/core';

/**
 * guided-diffusion's model flags, with its own names (as in `script_util.py`
 * and the fixtures' `__metadata__.config`). Lists may be given as
 * comma-separated strings or arrays.
 *
 * @public
 */
export interface GuidedDiffusionFlags {
  /** Side of the square input images in pixels (64, 128, 256, 512, or any size with `channel_mult` given). */
  image_size: number;
  /** Base channel count of the U-Net (`model_channels`). */
  num_channels: number;
  /** Residual blocks per resolution level. */
  num_res_blocks: number;
  /** Resolutions (not downsample factors) that get attention, e.g. "32,16,8". */
  attention_resolutions: string | readonly number[];
  /** Channel multipliers per level, e.g. "1,1,2,2,4,4"; "" picks guided-diffusion's default for the image size. */
  channel_mult?: string | readonly number[];
  /** Image channels (default 3). */
  in_channels?: number;
  /** Attention heads when `num_head_channels` is -1 or absent (default 4). */
  num_heads?: number;
  /** Channels per attention head; when set (not -1) it overrides `num_heads` (default -1). */
  num_head_channels?: number;
  /** Heads of the decoder's attention; -1 or absent means `num_heads`. */
  num_heads_upsample?: number;
  /** FiLM-style scale and shift from the timestep embedding in residual blocks (default true). */
  use_scale_shift_norm?: boolean;
  /** Residual blocks (rather than plain convolutions) for up- and downsampling (default false). */
  resblock_updown?: boolean;
  /** Split the fused QKV projection into q, k, v before the heads (guided-diffusion's `QKVAttention`) rather than heads first (`QKVAttentionLegacy`) (default false). */
  use_new_attention_order?: boolean;
  /** The model also predicts the variance: 6 output channels instead of 3 (default false). */
  learn_sigma?: boolean;
  /**
   * The model is class-conditional: it has a label embedding (`label_emb`)
   * and needs one class label per image. The number of classes is read from
   * the checkpoint (`label_emb.weight`'s first dimension; 1000 for the
   * published ImageNet models).
   */
  class_cond?: boolean;
  /** Number of diffusion steps T of the noise schedule (default 1000). */
  diffusion_steps?: number;
  /** The beta schedule (default `'linear'`). */
  noise_schedule?: 'linear' | 'cosine';
  /** Dropout rate of the residual blocks: inactive at inference; fine-tuning refuses a rate above 0 (the graph layer has no dropout). */
  dropout?: number;
  /** Accepted; precision is a runtime choice here (`dtype` of the extractor). */
  use_fp16?: boolean;
}

/** A resolved ADM U-Net configuration. @public */
export interface AdmConfig {
  /** Side of the square input images in pixels. */
  readonly imageSize: number;
  /** Image channels. */
  readonly inChannels: number;
  /** Base channel count (`num_channels`). */
  readonly modelChannels: number;
  /** Output channels: 6 with `learn_sigma`, else 3. */
  readonly outChannels: number;
  /** Residual blocks per resolution level. */
  readonly numResBlocks: number;
  /** Downsample factors that get attention (image_size / resolution). */
  readonly attentionDownsampleFactors: readonly number[];
  /** Channel multipliers per resolution level. */
  readonly channelMult: readonly number[];
  /** Heads of encoder and middle attention (resolved from num_head_channels per block when that is set). */
  readonly numHeads: number;
  /** Channels per attention head, or -1 to use `numHeads`. */
  readonly numHeadChannels: number;
  /** Heads of the decoder's attention (when `numHeadChannels` is -1). */
  readonly numHeadsUpsample: number;
  /** Scale and shift from the timestep embedding in residual blocks. */
  readonly useScaleShiftNorm: boolean;
  /** Residual blocks for up- and downsampling. */
  readonly resblockUpdown: boolean;
  /** q, k, v split before the heads (`QKVAttention`) rather than heads first (`QKVAttentionLegacy`). */
  readonly useNewAttentionOrder: boolean;
  /**
   * Number of classes of a class-conditional model (`class_cond`), undefined
   * for an unconditional one. `admConfig` assumes guided-diffusion's
   * NUM_CLASSES (1000); {@link AdmUNet} takes it from `label_emb.weight`.
   */
  readonly numClasses: number | undefined;
  /** The model also predicts the variance (6 output channels). */
  readonly learnSigma: boolean;
  /** Number of diffusion steps T. */
  readonly diffusionSteps: number;
  /** The beta schedule. */
  readonly noiseSchedule: 'linear' | 'cosine';
  /** The residual blocks' dropout rate when above 0 (absent for 0): active only in training mode. */
  readonly dropout?: number;
}

const DEFAULT_CHANNEL_MULT: Record<number, number[]> = {
  512: [0.5, 1, 1, 2, 2, 4, 4],
  256: [1, 1, 2, 2, 4, 4],
  128: [1, 1, 2, 3, 4],
  64: [1, 2, 3, 4],
};

const KNOWN_FLAGS = new Set([
  'image_size',
  'num_channels',
  'num_res_blocks',
  'attention_resolutions',
  'channel_mult',
  'in_channels',
  'num_heads',
  'num_head_channels',
  'num_heads_upsample',
  'use_scale_shift_norm',
  'resblock_updown',
  'use_new_attention_order',
  'learn_sigma',
  'class_cond',
  'diffusion_steps',
  'noise_schedule',
  'dropout',
  'use_fp16',
  'use_checkpoint',
  'timestep_respacing',
  'rescale_learned_sigmas',
  'use_kl',
  'predict_xstart',
  'rescale_timesteps',
]);

/**
 * Flags of the published guided-diffusion checkpoints (from its README).
 *
 * @public
 */
export const ADM_PRESETS = {
  /** Unconditional ImageNet 256x256 (`256x256_diffusion_uncond.pt`, about 2.2 GB): the DiffSSL paper's model. */
  '256x256_diffusion_uncond': {
    attention_resolutions: '32,16,8',
    class_cond: false,
    diffusion_steps: 1000,
    image_size: 256,
    learn_sigma: true,
    noise_schedule: 'linear',
    num_channels: 256,
    num_head_channels: 64,
    num_res_blocks: 2,
    resblock_updown: true,
    use_fp16: true,
    use_scale_shift_norm: true,
  },
  /** Class-conditional ImageNet 256x256 (`256x256_diffusion.pt`). */
  '256x256_diffusion': {
    attention_resolutions: '32,16,8',
    class_cond: true,
    diffusion_steps: 1000,
    image_size: 256,
    learn_sigma: true,
    noise_schedule: 'linear',
    num_channels: 256,
    num_head_channels: 64,
    num_res_blocks: 2,
    resblock_updown: true,
    use_fp16: true,
    use_scale_shift_norm: true,
  },
  /** Class-conditional ImageNet 128x128 (`128x128_diffusion.pt`). */
  '128x128_diffusion': {
    attention_resolutions: '32,16,8',
    class_cond: true,
    diffusion_steps: 1000,
    image_size: 128,
    learn_sigma: true,
    noise_schedule: 'linear',
    num_channels: 256,
    num_heads: 4,
    num_res_blocks: 2,
    resblock_updown: true,
    use_fp16: true,
    use_scale_shift_norm: true,
  },
  /** Class-conditional ImageNet 64x64 (`64x64_diffusion.pt`). */
  '64x64_diffusion': {
    attention_resolutions: '32,16,8',
    class_cond: true,
    diffusion_steps: 1000,
    dropout: 0.1,
    image_size: 64,
    learn_sigma: true,
    noise_schedule: 'cosine',
    num_channels: 192,
    num_head_channels: 64,
    num_res_blocks: 3,
    resblock_updown: true,
    use_new_attention_order: true,
    use_fp16: true,
    use_scale_shift_norm: true,
  },
  /** Class-conditional ImageNet 512x512 (`512x512_diffusion.pt`). */
  '512x512_diffusion': {
    attention_resolutions: '32,16,8',
    class_cond: true,
    diffusion_steps: 1000,
    image_size: 512,
    learn_sigma: true,
    noise_schedule: 'linear',
    num_channels: 256,
    num_head_channels: 64,
    num_res_blocks: 2,
    resblock_updown: true,
    use_fp16: false,
    use_scale_shift_norm: true,
  },
} as const satisfies Record<string, GuidedDiffusionFlags>;

/** Names of the published presets. @public */
export type AdmPresetName = keyof typeof ADM_PRESETS;

function parseList(name: string, value: string | readonly number[] | undefined): number[] {
  if (value === undefined || value === '') return [];
  const items =
    typeof value === 'string'
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map(Number)
      : [...value];
  if (items.some((v) => !Number.isFinite(v) || v <= 0))
    throw new ConfigError(`U-Net flags: ${name} must list positive numbers; found ${JSON.stringify(value)}`);
  return items;
}

/** guided-diffusion's `str2bool`: booleans, or yes/true/t/y/1 and no/false/f/n/0 in any case. */
function booleanFlag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  const text = typeof value === 'string' ? value.toLowerCase() : typeof value === 'number' ? String(value) : undefined;
  if (text !== undefined && ['yes', 'true', 't', 'y', '1'].includes(text)) return true;
  if (text !== undefined && ['no', 'false', 'f', 'n', '0'].includes(text)) return false;
  throw new ConfigError(`U-Net flags: ${name} must be a boolean; found ${JSON.stringify(value)}`);
}

/** guided-diffusion's NUM_CLASSES: the class count `class_cond` implies until a checkpoint says otherwise. */
const GUIDED_DIFFUSION_NUM_CLASSES = 1000;

function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
    throw new ConfigError(`U-Net flags: ${name} must be a positive integer; found ${JSON.stringify(value)}`);
  return value;
}

/**
 * Resolves guided-diffusion flags to a configuration, applying
 * guided-diffusion's defaults and checks.
 *
 * @param flags - the flags (or a preset name)
 * @throws `ConfigError` naming the flag, what was expected and what was found
 * @public
 */
export function admConfig(flags: GuidedDiffusionFlags | AdmPresetName): AdmConfig {
  const resolved: GuidedDiffusionFlags = typeof flags === 'string' ? presetFlags(flags) : flags;
  if (typeof resolved !== 'object' || resolved === null)
    throw new ConfigError(`U-Net flags: expected an object of guided-diffusion flags; found ${String(resolved)}`);
  const unknown = Object.keys(resolved).filter((key) => !KNOWN_FLAGS.has(key));
  if (unknown.length > 0) throw new ConfigError(`U-Net flags: unknown flag(s) ${unknown.join(', ')}; known: ${[...KNOWN_FLAGS].slice(0, 18).join(', ')}`);
  const imageSize = positiveInteger('image_size', resolved.image_size);
  let channelMult = parseList('channel_mult', resolved.channel_mult);
  if (channelMult.length === 0) {
    const defaults = DEFAULT_CHANNEL_MULT[imageSize];
    if (!defaults)
      throw new ConfigError(`U-Net flags: no default channel_mult for image_size ${imageSize}; give channel_mult (defaults exist for 64, 128, 256, 512)`);
    channelMult = defaults;
  }
  const attentionDownsampleFactors = parseList('attention_resolutions', resolved.attention_resolutions).map((resolution) => Math.floor(imageSize / resolution));
  const numHeads = resolved.num_heads ?? 4;
  const numHeadChannels = resolved.num_head_channels ?? -1;
  if (numHeadChannels === -1) positiveInteger('num_heads', numHeads);
  else positiveInteger('num_head_channels', numHeadChannels);
  const numHeadsUpsample =
    resolved.num_heads_upsample === undefined || resolved.num_heads_upsample === -1
      ? numHeads
      : positiveInteger('num_heads_upsample', resolved.num_heads_upsample);
  const schedule = resolved.noise_schedule ?? 'linear';
  if (schedule !== 'linear' && schedule !== 'cosine')
    throw new ConfigError(`U-Net flags: noise_schedule must be 'linear' or 'cosine'; found ${JSON.stringify(schedule)}`);
  const modelChannels = positiveInteger('num_channels', resolved.num_channels);
  const dropout = resolved.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1))
    throw new ConfigError(`U-Net flags: dropout must be a number in [0, 1); found ${JSON.stringify(resolved.dropout)}`);
  if (imageSize % 2 ** (channelMult.length - 1) !== 0) {
    throw new ConfigError(
      `U-Net flags: image_size ${imageSize} is not divisible by 2^${channelMult.length - 1} (${channelMult.length} levels of channel_mult)`,
    );
  }
  return {
    imageSize,
    inChannels: resolved.in_channels ?? 3,
    modelChannels,
    outChannels: booleanFlag('learn_sigma', resolved.learn_sigma, false) ? 6 : 3,
    numResBlocks: positiveInteger('num_res_blocks', resolved.num_res_blocks),
    attentionDownsampleFactors,
    channelMult,
    numHeads,
    numHeadChannels,
    numHeadsUpsample,
    useScaleShiftNorm: booleanFlag('use_scale_shift_norm', resolved.use_scale_shift_norm, true),
    resblockUpdown: booleanFlag('resblock_updown', resolved.resblock_updown, false),
    useNewAttentionOrder: booleanFlag('use_new_attention_order', resolved.use_new_attention_order, false),
    numClasses: booleanFlag('class_cond', resolved.class_cond, false) ? GUIDED_DIFFUSION_NUM_CLASSES : undefined,
    learnSigma: booleanFlag('learn_sigma', resolved.learn_sigma, false),
    diffusionSteps: positiveInteger('diffusion_steps', resolved.diffusion_steps ?? 1000),
    noiseSchedule: schedule,
    ...(dropout > 0 ? { dropout } : {}),
  };
}

function presetFlags(name: string): GuidedDiffusionFlags {
  const preset = (ADM_PRESETS as Record<string, GuidedDiffusionFlags>)[name];
  if (!preset) throw new ConfigError(`U-Net preset '${name}' is unknown; presets: ${Object.keys(ADM_PRESETS).join(', ')}`);
  return preset;
}
