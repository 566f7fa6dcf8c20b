import { readFile } from 'node:fs/promises';
import { ConfigError } from '@diffssl/core';
import { AdmUNet, admConfig, ADM_PRESETS, initialAdmWeights, loadCheckpoint, type AdmPresetName, type GuidedDiffusionFlags } from '@diffssl/unet';
import { checkpointDigest } from '../cache/key.js';

/** A loaded U-Net and what identifies it in feature-cache keys. @public */
export interface LoadedUNet {
  /** The U-Net. */
  unet: AdmUNet;
  /** `sha256:<hex>` of the checkpoint file, or `random-init:<seed>` for a fresh U-Net. */
  identity: string;
  /** The flags (or preset name) it was built with. */
  config: GuidedDiffusionFlags | AdmPresetName;
}

/**
 * Reads guided-diffusion flags: a preset name, or a JSON file of flags.
 *
 * @throws `ConfigError` naming the file and what is wrong with it
 * @public
 */
export async function readFlags(config: string): Promise<GuidedDiffusionFlags | AdmPresetName> {
  if (config in ADM_PRESETS) return config as AdmPresetName;
  let text: string;
  try {
    text = await readFile(config, 'utf8');
  } catch (cause) {
    throw new ConfigError(`--config: '${config}' is neither a preset (${Object.keys(ADM_PRESETS).join(', ')}) nor a readable flags file: ${(cause as Error).message}`);
  }
  try {
    return JSON.parse(text) as GuidedDiffusionFlags;
  } catch (cause) {
    throw new ConfigError(`--config: ${config} is not valid JSON: ${(cause as Error).message}`);
  }
}

/**
 * Loads a U-Net from a checkpoint and its flags, or builds a freshly
 * initialized one (the `random` baseline) from the flags alone.
 *
 * @param options - the checkpoint (ignored with `randomInit`), the flags or preset, and the seed of a fresh U-Net
 * @throws `ConfigError`, `FormatError` or `CheckpointMismatchError` for a bad checkpoint or flags
 * @public
 */
export async function loadUNet(options: { checkpoint?: string; config: string; randomInit?: { seed: number } }): Promise<LoadedUNet> {
  const config = await readFlags(options.config);
  if (options.randomInit) {
    return { unet: new AdmUNet(config, initialAdmWeights(admConfig(config), options.randomInit.seed)), identity: `random-init:${options.randomInit.seed}`, config };
  }
  if (!options.checkpoint) throw new ConfigError('--checkpoint: expected a .pt, .pth or .safetensors file of U-Net weights');
  const [weights, identity] = await Promise.all([loadCheckpoint(options.checkpoint), checkpointDigest(options.checkpoint)]);
  return { unet: new AdmUNet(config, weights), identity, config };
}
