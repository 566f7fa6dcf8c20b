/**
 * Guided-diffusion (ADM) U-Nets as ONNX feature extractors: PyTorch and
 * safetensors checkpoints (restricted unpickler, no code ever runs), the
 * U-Net graph with feature taps at any numbered block, early exit and DifFeed
 * feedback inputs, the noise schedule with `q_sample` and seeded noise.
 *
 * @packageDocumentation
 */
export { ADM_PRESETS, admConfig, type AdmConfig, type AdmPresetName, type GuidedDiffusionFlags } from './config.js';
export { unetLayout, expectedWeights, type BlockSpec, type UNetLayout } from './layout.js';
export { AdmUNet, type UNetBuildOptions, type UNetOutputs } from './adm-unet.js';
export { betaSchedule, noiseSchedule, qSample, seededNoise, type NoiseSchedule } from './schedule.js';
export { readTorchCheckpoint, loadCheckpoint } from './checkpoint/torch-checkpoint.js';
export { restrictedUnpickle, type PickleValue } from './checkpoint/unpickler.js';
export { UnsafePickleError, CheckpointMismatchError } from './checkpoint/errors.js';
export { createFeatureExtractor, featureKey, FeatureExtractor, type FeatureBatch, type FeatureExtractorOptions, type UNetSource } from './extractor.js';
