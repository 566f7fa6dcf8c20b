/**
 * `pnpm bench` in @diffssl/diffeed: one DifFeed training step on the
 * embedded adm-fm28 U-Net at batch 32 (feedback from decoder blocks 11, 13,
 * 15, 17 into 9, 7, 5, 3 with C_B_R networks; a DifFormer head on the second
 * pass's block 10 at t=50, dim 64, 2 ViT blocks; SGD), on the CPU provider:
 * steps/s and achieved GFLOP/s as a fraction of ORT's 512 matmul rate in the
 * same run. FLOPs counted: the first pass up to block 17 and the second up to
 * block 10 forward, the second pass again for its input gradients (the U-Net's
 * weights get none), and 3x the head's and feedback networks' forward.
 */
import { BuildContext, compileModuleTrainStep, crossEntropy, Graph, HostTensor, sgd } from '@diffssl/core';
import { DifFormer } from '@diffssl/difformer';
import { embeddedFlags, fixturePath, matmulRate, randomTensor, secondsPerRun, vitForwardFlops } from '@diffssl/testing';
import { AdmUNet, readTorchCheckpoint } from '@diffssl/unet';
import { DifFeed, DifFeedClassifier } from '../src/index.js';

const batch = 32;
const unet = new AdmUNet(embeddedFlags() as never, await readTorchCheckpoint(fixturePath('adm-fm28.pt')));
const sources = [11, 13, 15, 17];
const difFeed = new DifFeed({ unet, feedbackFrom: sources, arch: 'C_B_R', seed: 1 });
const head = DifFormer.fromUNet(unet, {
  firstPassBlocks: [],
  secondPassBlocks: [10],
  timesteps: [50],
  prePoolSize: 7,
  numClasses: 10,
  seed: 2,
  fusion: 'Use_CLS_Token:True:64,Insert_CLS_Token,Attention:64:4:4:2,Extract_CLS_Token',
});
const model = new DifFeedClassifier(difFeed, head);
const graph = new Graph();
const context = new BuildContext(graph, model.modules(), { mode: 'train' });
const xStart = graph.input('x_start', 'float32', ['batch', 3, 28, 28]);
const noise = graph.input('noise', 'float32', ['batch', 3, 28, 28]);
const logits = model.forward(context, { xStart, noise: new Map([[50, noise]]) });
const step = await compileModuleTrainStep({
  context,
  loss: crossEntropy(logits, graph.input('labels', 'int64', ['batch'])),
  optimizer: sgd(),
  runner: { executionProviders: ['cpu'] },
});
const feeds = {
  x_start: randomTensor([batch, 3, 28, 28], 1),
  noise: randomTensor([batch, 3, 28, 28], 2),
  labels: HostTensor.from(
    'int64',
    [batch],
    Array.from({ length: batch }, (_, i) => BigInt(i % 10)),
  ),
};

const rate = await matmulRate();
console.log(`ORT matmul 512: ${rate.toFixed(1)} GFLOP/s`);
const seconds = await secondsPerRun(() => step.run(feeds, { learningRate: 0.01 }), 10, 3);
await step.release();
const feedbackMacs = sources.reduce((total, source) => {
  const from = unet.block(source);
  const to = unet.block(difFeed.targets.get(source)!);
  return total + from.channels * to.channels * from.resolution ** 2;
}, 0);
const block10 = unet.block(10);
const headFlops = 2 * 49 * block10.channels * 64 + vitForwardFlops(1, 50, 64, 4, 2) + 2 * 64 * 10;
const flops = batch * (2 * (unet.forwardMacs(17) + unet.forwardMacs(10)) + 2 * unet.forwardMacs(10) + 3 * (2 * feedbackMacs + headFlops));
const achieved = flops / seconds / 1e9;
console.log(
  `DifFeed train step (adm-fm28, batch ${batch}, feedback 11/13/15/17 -> 9/7/5/3, head on block 10 at t=50): ${(1 / seconds).toFixed(2)} steps/s, ${achieved.toFixed(1)} GFLOP/s = ${(achieved / rate).toFixed(2)} of the matmul rate`,
);
