/**
 * DifFormer: attention fusion of diffusion features over several U-Net blocks
 * and timesteps (the reference's `AttentionFusion`), with the reference's
 * parameter names.
 *
 * @example
 * ```ts
 * import { DifFormer } from '@diffssl/difformer';
 * const fusion = DifFormer.fromUNet(unet, { firstPassBlocks: [19, 24, 30], timesteps: [90, 150, 300], prePoolSize: 7, numClasses: 1000,
 *   fusion: 'Use_CLS_Token:True:1024,Insert_CLS_Token,Attention:1024:8:4:2,Extract_CLS_Token' });
 * ```
 *
 * @packageDocumentation
 * @module @diffssl/difformer
 */
export { DifFormer, fusionKey, type BlockMetadataSource, type DifFormerOptions, type FusionBlockInfo, type FusionNorm } from './difformer.js';
