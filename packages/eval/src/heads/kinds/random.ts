import type { ProtocolHeadKind, ProtocolSupport } from '../head-kind.js';
import { linearHeadKind } from './linear.js';

/** GD(L)'s protocol, on the same architecture freshly initialized. */
const randomProtocol: ProtocolSupport = { ...linearHeadKind.protocol, unet: 'random' };

/**
 * `random`: the random U-Net baseline, GD(L) on the same architecture freshly
 * initialized (PyTorch's default initialization, guided-diffusion's zeroed
 * convolutions), seeded by `--seed`.
 *
 * @public
 */
export const randomHeadKind: ProtocolHeadKind<'random'> = {
  name: 'random',
  summary: 'baseline: GD(L) on a freshly initialized U-Net of the same architecture',
  protocol: randomProtocol,
};
