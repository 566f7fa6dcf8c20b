/**
 * `pnpm bench` in @diffssl/eval, part 2: one fine-tuning step (the
 * reference's `--mode finetune`) on the embedded adm-fm28 U-Net at batch 32,
 * GD(L) on block 10 at t=50: `q_sample`, the U-Net in float32 up to block 10
 * with trainable weights, 2x2 pooling, Linear, cross-entropy, one plain SGD
 * step over the U-Net's and the head's parameters, on the CPU provider.
 * Prints steps/s, the achieved GFLOP/s as a fraction of ORT's 512 matmul
 * rate measured in the same process, and the process's peak RSS (this script
 * runs in its own process so that the figure is the step's). FLOPs counted:
 * the U-Net's forward up to block 10, and twice that for its backward (input
 * and weight gradients); the head is negligible.
 */
import { BuildContext, compileModuleTrainStep, crossEntropy, Graph, HostTensor, sgd } from '@diffssl/core';
import { embeddedFlags, fixturePath, matmulRate, randomTensor, secondsPerRun } from '@diffssl/testing';
import { AdmUNet, readTorchCheckpoint } from '@diffssl/unet';
import { createProtocolModel } from '../src/index.js';

const batch = 32;
const unet = new AdmUNet(embeddedFlags() as never, await readTorchCheckpoint(fixturePath('adm-fm28.pt')));
const model = createProtocolModel({ protocol: 'linear', blocks: [10], timesteps: [50], numClasses: 10, finetune: true, seed: 0 }, unet);
const graph = new Graph();
const context = new BuildContext(graph, model.modules(), { mode: 'train' });
const inputs = new Map([...model.inputs()].map(([name, input]) => [name, graph.input(name, input.dtype, ['batch', ...input.shape])]));
const logits = model.forward(context, inputs);
const step = await compileModuleTrainStep({
  context,
  loss: crossEntropy(logits, graph.input('labels', 'int64', ['batch'])),
  optimizer: sgd(),
  runner: { executionProviders: ['cpu'] },
});
const feeds: Record<string, HostTensor> = {
  labels: HostTensor.from(
    'int64',
    [batch],
    Array.from({ length: batch }, (_, i) => BigInt(i % 10)),
  ),
};
[...model.inputs()].forEach(([name, input], i) => (feeds[name] = randomTensor([batch, ...input.shape], i + 1)));

const rate = await matmulRate();
console.log(`ORT matmul 512: ${rate.toFixed(1)} GFLOP/s`);
const seconds = await secondsPerRun(() => step.run(feeds, { learningRate: 1e-3 }), 10, 3);
await step.release();
const trained = context.trainableWeights().length;
const flops = batch * 3 * 2 * unet.forwardMacs(10);
const achieved = flops / seconds / 1e9;
const peakRss = process.resourceUsage().maxRSS / 1024 ** 2;
console.log(
  `fine-tuning step (adm-fm28, batch ${batch}, GD(L) on block 10 at t=50, ${trained} trained tensors): ${(1 / seconds).toFixed(2)} steps/s, ` +
    `${achieved.toFixed(1)} GFLOP/s = ${(achieved / rate).toFixed(2)} of the matmul rate; peak RSS ${peakRss.toFixed(2)} GiB`,
);
