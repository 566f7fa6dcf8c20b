// What the Node and browser entry points share.
export { ADM_PRESETS, admConfig, type AdmConfig, type AdmPresetName, type GuidedDiffusionFlags } from './config.js';
export { unetLayout, expectedWeights, feedbackTarget, initialAdmWeights, type BlockSpec, type UNetBlock, type UNetLayout } from './layout.js';
export { UNET_PRECISIONS, type DiffusionUNet, type UNetBuildOptions, type UNetInfo, type UNetOutputs, type UNetPrecision } from './diffusion-unet.js';
export { AdmUNet } from './adm-unet.js';
export { UNetWeights } from './unet-weights.js';
export { betaSchedule, noiseSchedule, qSample, seededNoise, type NoiseSchedule, type NoiseSplit } from './schedule.js';
export { CheckpointMismatchError } from './checkpoint/errors.js';
export { PIXEL_TO_MODEL } from './pixels.js';
export {
  featureKey,
  FeatureExtractor,
  buildExtractionModel,
  pixelNoiseId,
  qSampleGraph,
  type ExtractCallOptions,
  type ExtractionModelInfo,
  type ExtractionOptions,
  type FeatureBatch,
} from './extractor.js';
