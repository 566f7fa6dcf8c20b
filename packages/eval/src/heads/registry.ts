import { ConfigError } from '@diffssl/core';
import type { DiffusionUNet } from '@diffssl/unet';
import type { HeadOptionName, ProtocolHeadKind, ProtocolModel, ProtocolSettings, ProtocolSupport } from './head-kind.js';
import { flagOf } from './head-options.js';
import { attentionHeadKind } from './kinds/attention.js';
import { diffeedHeadKind } from './kinds/diffeed.js';
import { difformerHeadKind } from './kinds/difformer.js';
import { layersHeadKind } from './kinds/layers.js';
import { linearHeadKind } from './kinds/linear.js';
import { pixelsHeadKind } from './kinds/pixels.js';
import { randomHeadKind } from './kinds/random.js';
import { FeatureHeadClassifier } from '../protocols/feature-head.js';
import { finetunedWeights, FineTunedHeadClassifier } from '../protocols/finetune.js';

/**
 * Every head kind, in the order reports list them. A kind is one file in
 * `heads/kinds/` and one line here; commands, protocols, export, `head-step`
 * and the web page read this list.
 *
 * @public
 */
export const HEAD_KINDS = [pixelsHeadKind, randomHeadKind, linearHeadKind, attentionHeadKind, difformerHeadKind, diffeedHeadKind, layersHeadKind] as const;

/** The name of a head kind. @public */
export type HeadKindName = (typeof HEAD_KINDS)[number]['name'];

/** A head kind that trains as a protocol (`diffssl train --protocol`). @public */
export type ProtocolKind = Extract<(typeof HEAD_KINDS)[number], ProtocolHeadKind>;

/** The evaluation protocols: the kinds with protocol support. @public */
export type Protocol = ProtocolKind['name'];

/** Every protocol, in the order reports list them. @public */
export const PROTOCOLS: readonly Protocol[] = HEAD_KINDS.filter((kind): kind is ProtocolKind => 'protocol' in kind).map((kind) => kind.name);

/**
 * The kind of a protocol.
 *
 * @throws `ConfigError` listing the protocols
 * @public
 */
export function protocolKind(name: string): ProtocolKind {
  const kind = HEAD_KINDS.find((candidate): candidate is ProtocolKind => candidate.name === name && 'protocol' in candidate);
  if (!kind) throw new ConfigError(`--protocol: expected one of ${PROTOCOLS.join(', ')}; found '${name}'`);
  return kind;
}

/**
 * Options given to a run, by what they set: the kind-specific ones (named as in
 * `ProtocolSettings`) and the common ones whose use depends on the kind.
 *
 * @public
 */
export type GivenOptions = Partial<Record<HeadOptionName | 'blocks' | 'timesteps' | 'checkpoint' | 'config' | 'draws' | 'cache' | 'finetune', unknown>>;

const COMMON_FLAGS: Record<Exclude<keyof GivenOptions, HeadOptionName>, string> = {
  blocks: '--blocks',
  timesteps: '--timesteps',
  checkpoint: '--checkpoint',
  config: '--config',
  draws: '--draws',
  cache: '--cache/--no-cache',
  finetune: '--finetune',
};

/**
 * Refuses an option that the protocol does not take, with one line naming
 * the flag and the protocol (and the protocols that do take it).
 *
 * @throws `ConfigError` for the first such option
 * @public
 */
export function checkProtocolOptions(protocol: Protocol, given: GivenOptions): void {
  for (const [key, value] of Object.entries(given) as [keyof GivenOptions, unknown][]) {
    if (value === undefined || takesOption(protocol, key)) continue;
    const flag = key in COMMON_FLAGS ? COMMON_FLAGS[key as keyof typeof COMMON_FLAGS] : flagOf(key as HeadOptionName);
    const others = PROTOCOLS.filter((name) => takesOption(name, key));
    throw new ConfigError(`${flag} does not apply to protocol ${protocol}${others.length > 0 ? `; it applies to ${others.join(', ')}` : ''}`);
  }
  if (given.draws !== undefined && given.cache === false)
    throw new ConfigError('--draws does not apply with --no-cache: recomputed features use one noise draw per image');
  if (given.finetune) {
    const cacheFlag = given.draws !== undefined ? '--draws' : given.cache !== undefined ? '--cache/--no-cache' : undefined;
    if (cacheFlag) throw new ConfigError(`${cacheFlag} does not apply with --finetune: the U-Net trains, so its features are never cached`);
  }
}

/** Whether a protocol takes an option. @public */
export function takesOption(protocol: Protocol, option: keyof GivenOptions): boolean {
  const support: ProtocolSupport = protocolKind(protocol).protocol;
  switch (option) {
    case 'blocks':
    case 'timesteps':
      return support.blocks !== 'none';
    case 'checkpoint':
      return support.unet === 'pretrained';
    case 'config':
      return support.unet !== 'none';
    case 'draws':
    case 'cache':
      return support.examples === 'features';
    case 'finetune':
      return support.unet === 'pretrained';
    default:
      return support.options.includes(option);
  }
}

/**
 * Builds a protocol's model, after checking its blocks and timesteps, its
 * U-Net and its image shape against what the kind reads.
 *
 * @param settings - the protocol settings
 * @param unet - the U-Net (the random baseline's is freshly initialized; unused for pixels)
 * @param imageShape - [C, H, W] of the raw images (pixels)
 * @throws `ConfigError` for settings the protocol cannot take
 * @public
 */
export function createProtocolModel(
  settings: ProtocolSettings,
  unet: DiffusionUNet | undefined,
  imageShape?: readonly [number, number, number],
): ProtocolModel {
  const { protocol, blocks, timesteps } = settings;
  const support: ProtocolSupport = protocolKind(protocol).protocol;
  if (support.unet !== 'none') {
    if (!unet) throw new ConfigError(`${protocol}: needs a U-Net (--checkpoint and --config)`);
    if (unet.info.numClasses !== undefined)
      throw new ConfigError(`${protocol}: the U-Net is class-conditional (class_cond); the evaluation protocols read unconditional U-Nets`);
  }
  if (support.blocks !== 'none') {
    if (blocks.length === 0) throw new ConfigError(`${protocol}: expected at least one block (--blocks); found none`);
    if (timesteps.length === 0) throw new ConfigError(`${protocol}: expected at least one timestep (--timesteps); found none`);
  }
  if (support.blocks === 'one' && (blocks.length !== 1 || timesteps.length !== 1)) {
    throw new ConfigError(
      `${protocol}: reads one block at one timestep; found blocks [${blocks.join(', ')}] and timesteps [${timesteps.join(', ')}] (use difformer to fuse several)`,
    );
  }
  if (settings.finetune && support.unet !== 'pretrained') {
    throw new ConfigError(
      `--finetune: ${protocol} has no pretrained U-Net to fine-tune; fine-tuning works with ${PROTOCOLS.filter((name) => takesOption(name, 'finetune')).join(', ')}`,
    );
  }
  const model = support.createModel(settings, { ...(unet ? { unet } : {}), ...(imageShape ? { imageShape } : {}) });
  if (!settings.finetune) return model;
  // A head on cached features becomes a head on a trainable U-Net; a kind that runs the U-Net itself trains it.
  if (model instanceof FeatureHeadClassifier) return new FineTunedHeadClassifier(model);
  if (!finetunedWeights(model)) throw new ConfigError(`--finetune: ${protocol}'s model does not train its U-Net`);
  return model;
}
