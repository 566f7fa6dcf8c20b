import type { DiffusionUNet } from '@diffssl/unet';
import { DifFeedModel } from '../../protocols/diffeed-model.js';
import type { ProtocolHeadKind, ProtocolSupport } from '../head-kind.js';
import { DEFAULT_FUSION_ARC } from './difformer.js';

/** The feedback arch of the reference runs. @public */
export const DEFAULT_FEEDBACK_ARCH = 'C_B_R';

/**
 * DifFeed's default feedback sources: every other decoder block from the one
 * after the middle block, up to two before the last (for the 19-block
 * Fashion-MNIST U-Net: 11, 13, 15, 17 into 9, 7, 5, 3, as in the reference
 * runs). The paper's 256x256 setting (21, 24, ..., 36) is given explicitly.
 *
 * @public
 */
export function defaultFeedbackFrom(unet: Pick<DiffusionUNet, 'blocks'>): number[] {
  const middle = unet.blocks.findIndex((block) => block.part === 'middle') + 1;
  const out: number[] = [];
  for (let block = middle + 1; block <= unet.blocks.length - 2; block += 2) out.push(block);
  return out;
}

const diffeedProtocol: ProtocolSupport = {
  learningRate: 1e-2,
  prePoolSize: 7,
  examples: 'images',
  unet: 'pretrained',
  blocks: 'several',
  options: ['prePoolSize', 'fusionArc', 'normType', 'feedbackFrom', 'feedbackArch'],
  createModel: (settings, { unet }) =>
    new DifFeedModel(unet!, {
      feedbackFrom: settings.feedbackFrom ?? defaultFeedbackFrom(unet!),
      arch: settings.feedbackArch ?? DEFAULT_FEEDBACK_ARCH,
      secondPassBlocks: settings.blocks,
      timesteps: settings.timesteps,
      fusionArc: settings.fusionArc ?? DEFAULT_FUSION_ARC,
      normType: settings.normType ?? 'layer',
      prePoolSize: settings.prePoolSize ?? diffeedProtocol.prePoolSize,
      numClasses: settings.numClasses,
      seed: settings.seed ?? 0,
      finetune: settings.finetune ?? false,
    }),
};

/**
 * `diffeed`: DifFeed, feedback networks from decoder blocks onto encoder
 * blocks and a second U-Net pass, read by a DifFormer head; the U-Net runs on
 * every step (its features cannot be cached).
 *
 * @public
 */
export const diffeedHeadKind: ProtocolHeadKind<'diffeed'> = {
  name: 'diffeed',
  summary: 'DifFeed: decoder-to-encoder feedback, a second U-Net pass read by a DifFormer head',
  protocol: diffeedProtocol,
};
