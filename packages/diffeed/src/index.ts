/**
 * DifFeed: feedback networks from decoder to encoder blocks and the two-pass U-Net.
 *
 * This package is part of the DiffSSL TypeScript toolkit. Its public surface
 * is still empty: the implementation arrives with its own issue, and nothing
 * here pretends otherwise. Use `@diffssl/core` for tensors, ops, autodiff,
 * train steps and ONNX Runtime sessions today.
 *
 * @packageDocumentation
 */
export {};
