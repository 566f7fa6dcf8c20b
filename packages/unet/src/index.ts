/**
 * Guided-diffusion (ADM) U-Nets as ONNX feature extractors: PyTorch and
 * safetensors checkpoints (restricted unpickler, no code ever runs), the
 * U-Net graph with feature taps at any numbered block, early exit and DifFeed
 * feedback inputs, the noise schedule with `q_sample` and seeded noise, and a
 * cached, streaming feature extractor.
 *
 * @packageDocumentation
 * @module @diffssl/unet
 */
export * from './common.js';
export { readTorchCheckpoint, loadCheckpoint, type CheckpointReadOptions } from './checkpoint/torch-checkpoint.js';
export { torchCheckpointBytes, writeTorchCheckpoint } from './checkpoint/torch-checkpoint-writer.js';
export { restrictedUnpickle, type PickleValue } from './checkpoint/unpickler.js';
export { UnsafePickleError } from './checkpoint/errors.js';
export { createFeatureExtractor, type ExtractorSetupProgress, type FeatureExtractorOptions, type UNetSource } from './extractor.node.js';
