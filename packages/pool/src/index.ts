/**
 * Heads over diffusion features: the paper's linear GD(L) head
 * ({@link LinearHead}, the reference's `Head`) and the attention-pooling layer
 * stack ({@link AttentionHead}, the reference's class of that name) from a
 * typed configuration or the reference's layer string, with the reference's
 * PyTorch parameter names.
 *
 * Names that mislead: the paper's "attention head" (protocol `attention`) is
 * not {@link AttentionHead} alone. It is a `DifFormer` from
 * `@diffssl/difformer` (the reference's `AttentionFusion`) reading one block at
 * one timestep: per-block pooling, LayerNorm and a 1x1 conv to tokens, then an
 * {@link AttentionHead} over the tokens, then a Linear. {@link AttentionHead}
 * is that inner layer stack, usable on its own on any tokens or feature map.
 *
 * @example
 * ```ts
 * import { AttentionHead } from '@diffssl/pool';
 * const head = AttentionHead.fromLayerString('Pool:2:2,Reshape,Attention:32:2:2:1,FullyPool,Dense:32:10:identity', { seed: 0 });
 * ```
 *
 * @packageDocumentation
 * @module @diffssl/pool
 */
export { LinearHead, parseHeadArc, type LinearHeadOptions } from './linear-head.js';
export { AttentionHead, tokensOf, type AttentionHeadOptions } from './attention-head.js';
export {
  checkChain,
  formatLayerString,
  inputKindOf,
  parseLayerString,
  type AttentionHeadConfig,
  type DenseActivation,
  type HeadLayerSpec,
} from './layer-string.js';
export { Mlp, SelfAttention, TransformerBlock } from './transformer-block.js';
