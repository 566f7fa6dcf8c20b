import type { ProtocolHeadKind, ProtocolSupport } from '../head-kind.js';
import { difformerHeadKind } from './difformer.js';

/** DifFormer's protocol, on one block at one timestep. */
const attentionProtocol: ProtocolSupport = { ...difformerHeadKind.protocol, blocks: 'one' };

/**
 * `attention`: the paper's attention head, a DifFormer (`AttentionFusion`)
 * on one block at one timestep: the block's pooled map becomes tokens, a small
 * transformer with a CLS token classifies them. In `head.json` it is the
 * `fusion` kind with one block and one timestep.
 *
 * @public
 */
export const attentionHeadKind: ProtocolHeadKind<'attention'> = {
  name: 'attention',
  summary: 'the attention head: a DifFormer on one block at one timestep (tokens + CLS, small transformer)',
  protocol: attentionProtocol,
};
