import { defineHeadKind, type ProtocolSupport } from '../head-kind.js';
import { fusionFeatureModel } from './difformer.js';

const attentionProtocol: ProtocolSupport = {
  learningRate: 5e-2,
  prePoolSize: 7,
  examples: 'features',
  unet: 'pretrained',
  blocks: 'one',
  options: ['prePoolSize', 'fusionArc', 'normType'],
  createModel: (settings, context) => fusionFeatureModel(settings, context, settings.prePoolSize ?? attentionProtocol.prePoolSize),
};

/**
 * `attention`: the paper's attention head, a DifFormer (`AttentionFusion`)
 * on one block at one timestep: the block's pooled map becomes tokens, a small
 * transformer with a CLS token classifies them. In `head.json` it is the
 * `fusion` kind with one block and one timestep.
 *
 * @public
 */
export const attentionHeadKind = defineHeadKind({
  name: 'attention',
  summary: 'the attention head: a DifFormer on one block at one timestep (tokens + CLS, small transformer)',
  protocol: attentionProtocol,
});
