// What the Node and browser entry points share.
export { ADM_PRESETS, admConfig, type AdmConfig, type AdmPresetName, type GuidedDiffusionFlags } from './config.js';
export { unetLayout, expectedWeights, type BlockSpec, type UNetLayout } from './layout.js';
export { AdmUNet, type UNetBuildOptions, type UNetOutputs } from './adm-unet.js';
export { betaSchedule, noiseSchedule, qSample, seededNoise, type NoiseSchedule } from './schedule.js';
export { CheckpointMismatchError } from './checkpoint/errors.js';
export { featureKey, FeatureExtractor, buildExtractionModel, type ExtractionModelInfo, type ExtractionOptions, type FeatureBatch } from './extractor.js';
