import { defineHeadKind, type ProtocolSupport } from '../head-kind.js';
import { linearFeatureModel } from './linear.js';

const randomProtocol: ProtocolSupport = {
  learningRate: 1e-2,
  prePoolSize: 2,
  examples: 'features',
  unet: 'random',
  blocks: 'one',
  options: ['prePoolSize', 'headArc'],
  createModel: (settings, context) => linearFeatureModel(settings, context, settings.prePoolSize ?? randomProtocol.prePoolSize),
};

/**
 * `random`: the random U-Net baseline, GD(L) on the same architecture freshly
 * initialized (PyTorch's default initialization, guided-diffusion's zeroed
 * convolutions), seeded by `--seed`.
 *
 * @public
 */
export const randomHeadKind = defineHeadKind({
  name: 'random',
  summary: 'baseline: GD(L) on a freshly initialized U-Net of the same architecture',
  protocol: randomProtocol,
});
