/**
 * DifFeed: feedback networks from the U-Net's decoder back to its encoder and
 * the two-pass model, with the reference's parameter names
 * (`feedback_layers.<i>.<j>`), trainable through the frozen second pass.
 *
 * @example
 * ```ts
 * import { DifFeed, DifFeedClassifier } from '@diffssl/diffeed';
 * const difFeed = new DifFeed({ unet, feedbackFrom: [21, 24, 27, 30, 33, 36], arch: 'C_B_R' });
 * const model = new DifFeedClassifier(difFeed, head);
 * ```
 *
 * @packageDocumentation
 * @module @diffssl/diffeed
 */
export { DifFeed, constantTimesteps, type DifFeedOptions, type DifFeedPasses, type FeedbackUNet } from './diffeed.js';
export { FeedbackNetwork, parseFeedbackArch, type FeedbackLayerToken } from './feedback-network.js';
export { DifFeedClassifier, type DifFeedClassifierInputs } from './classifier.js';
