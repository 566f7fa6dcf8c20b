/**
 * `pnpm bench` in @diffssl/difformer, on the CPU provider, at the paper's scale
 * (the 256x256 ImageNet U-Net's block metadata; random features):
 * 1. the attention head (DifFormer on one block and one timestep): dim 1024,
 *    8 heads, MLP ratio 4, 2 blocks, CLS token, 16x16 tokens from a
 *    1024-channel block (block 24), batch 32, 1000 classes;
 * 2. DifFormer over 3 blocks (19, 24, 30) x 3 timesteps (90, 150, 300), each
 *    block pooled to at most 16x16, the same head, batch 16 (batch 32 fits
 *    too, at 8.9 GiB of peak RSS: `bench:memory --batch 32`; it takes 2.3
 *    times as long per step).
 * For each: SGD train steps/s and achieved GFLOP/s (3x the forward FLOPs) as a
 * fraction of ORT's 512 matmul rate measured in the same run.
 */
import { compileModuleTrainStep, sgd } from '@diffssl/core';
import { matmulRate, secondsPerRun } from '@diffssl/testing';
import { paperHeadProblem } from './paper-head.js';

async function bench(label: string, blocks: number[], timesteps: number[], batch: number, rate: number): Promise<void> {
  const { context, loss, feeds, forwardFlops: flops } = paperHeadProblem(blocks, timesteps, batch);
  const step = await compileModuleTrainStep({
    context,
    loss,
    optimizer: sgd(),
    runner: { executionProviders: ['cpu'] },
  });
  const seconds = await secondsPerRun(() => step.run(feeds, { learningRate: 0.01 }), 20, 2);
  await step.release();
  const achieved = (3 * flops) / seconds / 1e9;
  console.log(
    `${label}: ${(1 / seconds).toFixed(3)} steps/s (${seconds.toFixed(2)} s/step), ${achieved.toFixed(1)} GFLOP/s = ${(achieved / rate).toFixed(2)} of the matmul rate`,
  );
}

const rate = await matmulRate();
console.log(`ORT matmul 512: ${rate.toFixed(1)} GFLOP/s`);
await bench('attention head (block 24, 16x16 tokens from 1024 channels, dim 1024, 8 heads, MLP x4, 2 blocks, CLS, batch 32)', [24], [150], 32, rate);
await bench('DifFormer (blocks 19/24/30 x t 90/150/300, pooled to <= 16x16, same head, batch 16)', [19, 24, 30], [90, 150, 300], 16, rate);
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(1)} GiB`);
console.log(`ORT matmul 512 after: ${(await matmulRate()).toFixed(1)} GFLOP/s`);
