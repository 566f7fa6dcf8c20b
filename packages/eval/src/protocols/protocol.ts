import { protocolKind, PROTOCOLS, type Protocol } from '../heads/registry.js';

export type { ProtocolModel, ProtocolSettings } from '../heads/head-kind.js';
export { DEFAULT_FUSION_ARC } from '../heads/kinds/difformer.js';
export { DEFAULT_FEEDBACK_ARCH, defaultFeedbackFrom } from '../heads/kinds/diffeed.js';
export { createProtocolModel, PROTOCOLS, type Protocol } from '../heads/registry.js';

/**
 * The reference's defaults of each protocol: SGD learning rate and pre-pool
 * size, read from the head registry.
 *
 * @public
 */
export const PROTOCOL_DEFAULTS: Readonly<
  Record<
    Protocol,
    {
      /** Initial SGD learning rate. */
      learningRate: number;
      /** `pre_pool_size`: adaptive average pooling of each feature map to this size (0 for pixels: none). */
      prePoolSize: number;
    }
  >
> = Object.fromEntries(
  PROTOCOLS.map((name) => {
    const { learningRate, prePoolSize } = protocolKind(name).protocol;
    return [name, { learningRate, prePoolSize }];
  }),
) as Record<Protocol, { learningRate: number; prePoolSize: number }>;

/**
 * Checks a protocol name.
 *
 * @throws `ConfigError` listing the protocols
 * @public
 */
export function parseProtocol(name: string): Protocol {
  return protocolKind(name).name;
}

/**
 * Whether a protocol trains on frozen (cacheable) features, unless the U-Net
 * is fine-tuned.
 *
 * @param finetune - the backbone mode is `finetune` (default false)
 * @public
 */
export function readsFrozenFeatures(protocol: Protocol, finetune = false): boolean {
  return !finetune && protocolKind(protocol).protocol.examples === 'features';
}
