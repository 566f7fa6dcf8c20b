/**
 * Guided-diffusion (ADM) U-Nets as ONNX feature extractors: checkpoint reading, the U-Net graph with feature taps and feedback inputs, the noise schedule and extraction.
 *
 * This package is part of the DiffSSL TypeScript toolkit. Its public surface
 * is still empty: the implementation arrives with its own issue, and nothing
 * here pretends otherwise. Use `@diffssl/core` for tensors, ops, autodiff,
 * train steps and ONNX Runtime sessions today.
 *
 * @packageDocumentation
 */
export {};
