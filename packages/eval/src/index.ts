/**
 * Datasets, the training loop, metrics, the feature cache, sweeps, reports and the `diffssl` command line.
 *
 * This package is part of the DiffSSL TypeScript toolkit. Its public surface
 * is still empty: the implementation arrives with its own issue, and nothing
 * here pretends otherwise. Use `@diffssl/core` for tensors, ops, autodiff,
 * train steps and ONNX Runtime sessions today.
 *
 * @packageDocumentation
 */
export {};
