/**
 * The paper's head training problem at 256x256, shared by this package's
 * benchmarks: a DifFormer (or, with one block and one timestep, the attention
 * head) over the 256x256 ADM layout's blocks, pooled to <= 16x16, dim 1024,
 * 8 heads, MLP x4, 2 blocks, CLS token, 1000 classes, with seeded random
 * features and labels.
 */
import { BuildContext, crossEntropy, Graph, HostTensor, type SymbolicTensor } from '@diffssl/core';
import { randomTensor, vitForwardFlops } from '@diffssl/testing';
import { admConfig, unetLayout } from '@diffssl/unet';
import { DifFormer, fusionKey } from '../src/index.js';

const layout = unetLayout(admConfig('256x256_diffusion_uncond'));
const unet = { block: (n: number) => layout.blocks[n - 1]! };
const PRE_POOL_SIZE = 16;
const DIM = 1024;
const FUSION = `Use_CLS_Token:True:${DIM},Insert_CLS_Token,Attention:${DIM}:8:4:2,Extract_CLS_Token`;

/** A built (not compiled) training problem. */
export interface PaperHeadProblem {
  /** The head's train-mode build context. */
  context: BuildContext;
  /** Mean cross-entropy over the batch. */
  loss: SymbolicTensor;
  /** Labels and, with a symbolic batch, one random feature map per block and timestep. */
  feeds: Record<string, HostTensor>;
  /** Forward FLOPs of one batch (pre-layers and transformer). */
  forwardFlops: number;
}

/**
 * Builds the problem for `blocks` x `timesteps` at `batch`. With
 * `symbolicBatch` the inputs' first axis is the named size 'batch' and the
 * feeds hold the features; without it the batch is static and only the labels
 * are fed (for graph analysis that runs nothing).
 */
export function paperHeadProblem(blocks: readonly number[], timesteps: readonly number[], batch: number, symbolicBatch = true): PaperHeadProblem {
  const head = DifFormer.fromUNet(unet, {
    firstPassBlocks: [...blocks],
    timesteps: [...timesteps],
    fusion: FUSION,
    prePoolSize: PRE_POOL_SIZE,
    numClasses: 1000,
    seed: 0,
  });
  const graph = new Graph();
  const context = new BuildContext(graph, head, { mode: 'train' });
  const batchDim = symbolicBatch ? 'batch' : batch;
  const feeds: Record<string, HostTensor> = {
    labels: HostTensor.from(
      'int64',
      [batch],
      Array.from({ length: batch }, (_, i) => BigInt(i % 1000)),
    ),
  };
  const inputs = new Map<string, SymbolicTensor>();
  let forwardFlops = 0;
  let seed = 1;
  for (const t of timesteps) {
    let tokens = 1;
    for (const block of blocks) {
      const { channels, resolution } = unet.block(block);
      const key = fusionKey(t, block);
      inputs.set(key, graph.input(key, 'float32', [batchDim, channels, resolution, resolution]));
      if (symbolicBatch) feeds[key] = randomTensor([batch, channels, resolution, resolution], seed++);
      const side = Math.min(resolution, PRE_POOL_SIZE);
      tokens += side * side;
      forwardFlops += 2 * batch * side * side * channels * DIM;
    }
    forwardFlops += vitForwardFlops(batch, tokens, DIM, 4, 2);
  }
  const logits = head.forward(context, inputs);
  const loss = crossEntropy(logits, graph.input('labels', 'int64', [batchDim]));
  return { context, loss, feeds, forwardFlops };
}
