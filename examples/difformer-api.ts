/**
 * The heads with the lower-level API, no pipeline: what `runProtocol` does
 * for `linear` and `difformer`, spelled out on the embedded Fashion-MNIST
 * default.
 *
 * 1. Load the U-Net (`AdmUNet`, `readTorchCheckpoint`) and read images
 *    (`openDataset`, `loadBatch`).
 * 2. Extract frozen features once (`createFeatureExtractor`): blocks 8, 9
 *    and 10 at t=50 and t=150, pooled to 7x7 inside the graph.
 * 3. Build each head into a graph (`BuildContext` in train mode), compile a
 *    train step (`compileModuleTrainStep` with `crossEntropy` and `sgd`) and
 *    train it on minibatches of the features:
 *    - GD(L), a `LinearHead` (2x2 pooling, one Linear) on block 10 at t=50;
 *    - a `DifFormer` over all six (block, timestep) features.
 * 4. Copy the trained weights back (`syncModules`), build the head again in
 *    eval mode, compile it (`compileModel`, `createRunner`) and score the test
 *    images (`MetricsAccumulator`).
 *
 * CI-sized: the first 1,000 training and 500 test images, 2 epochs per head.
 *
 *   pnpm --filter @diffssl/examples run difformer-api
 */
import { parseArgs } from 'node:util';
import {
  BuildContext,
  compileModel,
  compileModuleTrainStep,
  createRunner,
  crossEntropy,
  Graph,
  HostTensor,
  sgd,
  type Module,
  type RunnerOptions,
  type SymbolicTensor,
} from '@diffssl/core';
import { DifFormer, fusionKey } from '@diffssl/difformer';
import { epochBatches, FASHION_MNIST_CLASSES, loadBatch, MetricsAccumulator, openDataset, readFlags, type Dataset } from '@diffssl/eval';
import { LinearHead } from '@diffssl/pool';
import { AdmUNet, createFeatureExtractor, readTorchCheckpoint } from '@diffssl/unet';
import { EMBEDDED, scriptArguments, secondsSince } from './lib/common.js';

// No options; a stray one is refused (and the `--` of `pnpm run difformer-api --` is accepted).
parseArgs({ args: scriptArguments(), options: {} });

const TRAIN_IMAGES = 1000;
const TEST_IMAGES = 500;
const EPOCHS = 2;
const BATCH = 32;
const BLOCKS = [8, 9, 10];
const TIMESTEPS = [50, 150];
const PRE_POOL = 7;
// CPU only, so the example prints no provider fallback note; pass ['cuda', 'cpu'] on a GPU machine.
const runner: RunnerOptions = { executionProviders: ['cpu'] };

const started = performance.now();
console.log(`lower-level API, CI-sized: ${TRAIN_IMAGES} training and ${TEST_IMAGES} test images, ${EPOCHS} epochs per head`);

// 1. The U-Net and the data.
const unet = new AdmUNet(await readFlags(EMBEDDED.config), await readTorchCheckpoint(EMBEDDED.checkpoint));
const train = await openDataset(EMBEDDED.data, { split: 'train', limit: TRAIN_IMAGES, classes: FASHION_MNIST_CLASSES });
const test = await openDataset(EMBEDDED.data, { split: 'test', limit: TEST_IMAGES, classes: FASHION_MNIST_CLASSES });
/** All images of a dataset as float32 [N, 3, 28, 28] in [-1, 1] (gray replicated), with their labels. */
async function everything(dataset: Dataset) {
  const { images, labels } = await loadBatch(
    dataset,
    Array.from({ length: dataset.length }, (_, i) => i),
  );
  return { images, labels: Array.from(labels.data, Number) };
}
const trainData = await everything(train);
const testData = await everything(test);

// 2. Frozen features, extracted once: `t50/block08` is [N, 64, 7, 7], and so on.
const extractor = await createFeatureExtractor({ unet, blocks: BLOCKS, timesteps: TIMESTEPS, pool: PRE_POOL, batchSize: 64, runner });
const trainFeatures = await extractor.extract(trainData.images, { split: 'train' });
const testFeatures = await extractor.extract(testData.images, { split: 'test' });
await extractor.release();
for (const [key, tensor] of trainFeatures) console.log(`feature ${key}: [${tensor.shape.join(', ')}]`);
console.log(`features of ${TRAIN_IMAGES + TEST_IMAGES} images extracted on ${extractor.provider} (${secondsSince(started)} s)`);

/** Rows of a [N, ...] tensor, in the given order. */
function rows(tensor: HostTensor<'float32'>, indices: readonly number[]): HostTensor<'float32'> {
  const [count, ...rest] = tensor.shape;
  const width = tensor.size / count!;
  const out = new Float32Array(indices.length * width);
  indices.forEach((row, i) => out.set(tensor.data.subarray(row * width, (row + 1) * width), i * width));
  return HostTensor.from('float32', [indices.length, ...rest], out);
}

/** A head over named feature inputs: its module and how its logits come from the inputs. */
interface Head {
  name: string;
  module: Module;
  inputs: string[];
  forward(context: BuildContext, features: ReadonlyMap<string, SymbolicTensor>): SymbolicTensor;
  learningRate: number;
}

/** Builds the head's logits into a fresh graph with one input per feature (batch axis symbolic). */
function build(head: Head, mode: 'train' | 'eval') {
  const graph = new Graph();
  const context = new BuildContext(graph, head.module, { mode });
  const inputs = new Map(head.inputs.map((key) => [key, graph.input(key, 'float32', ['batch', ...trainFeatures.get(key)!.shape.slice(1)])]));
  return { graph, context, logits: head.forward(context, inputs) };
}

// 3 and 4. Train and score one head.
async function trainAndScore(head: Head): Promise<number> {
  const headStarted = performance.now();
  const { graph, context, logits } = build(head, 'train');
  const labels = graph.input('labels', 'int64', ['batch']);
  // Plain SGD as the reference's FM-10k protocol (no momentum, no weight decay).
  const step = await compileModuleTrainStep({ context, loss: crossEntropy(logits, labels), optimizer: sgd(), runner });
  for (let epoch = 1; epoch <= EPOCHS; epoch++) {
    let total = 0;
    let steps = 0;
    // A seeded shuffle per epoch; the last partial batch is dropped, as the reference's loader does.
    for (const batch of epochBatches(TRAIN_IMAGES, { batchSize: BATCH, shuffle: true, dropLast: true, seed: 0 }, epoch)) {
      const feeds: Record<string, HostTensor> = Object.fromEntries(head.inputs.map((key) => [key, rows(trainFeatures.get(key)!, batch)]));
      feeds.labels = HostTensor.from(
        'int64',
        [batch.length],
        batch.map((i) => BigInt(trainData.labels[i]!)),
      );
      const { losses } = await step.run(feeds, { learningRate: head.learningRate });
      total += losses[0]!;
      steps++;
    }
    console.log(`${head.name}, epoch ${epoch}: mean training loss ${(total / steps).toFixed(4)}`);
  }
  step.syncModules(); // the module now holds the trained weights (head.module.stateDict())
  await step.release();

  const evaluation = build(head, 'eval');
  const scorer = await createRunner(compileModel({ outputs: { logits: evaluation.logits } }), runner);
  const metrics = new MetricsAccumulator(FASHION_MNIST_CLASSES.length);
  for (const batch of epochBatches(TEST_IMAGES, { batchSize: 250 }, 0)) {
    const feeds = Object.fromEntries(head.inputs.map((key) => [key, rows(testFeatures.get(key)!, batch)]));
    const { logits } = await scorer.run(feeds);
    metrics.add(
      logits!,
      batch.map((i) => testData.labels[i]!),
    );
  }
  await scorer.release();
  const { top1 } = metrics.result();
  console.log(`${head.name}: top-1 ${top1.toFixed(2)} % on ${TEST_IMAGES} test images (${secondsSince(headStarted)} s)`);
  return top1;
}

const linearKey = fusionKey(50, 10);
const linear = new LinearHead({ channels: unet.block(10).channels, numClasses: 10, prePoolSize: 2, seed: 0 });
await trainAndScore({
  name: 'GD(L) block 10, t=50',
  module: linear,
  inputs: [linearKey],
  forward: (context, features) => linear.forward(context, features.get(linearKey)!),
  learningRate: 1e-2,
});

const difFormer = DifFormer.fromUNet(unet, {
  firstPassBlocks: BLOCKS,
  timesteps: TIMESTEPS,
  prePoolSize: PRE_POOL,
  fusion: 'Use_CLS_Token:True:64,Insert_CLS_Token,Attention:64:4:4:2,Extract_CLS_Token',
  numClasses: 10,
  seed: 0,
});
console.log(`DifFormer: ${difFormer.parameterCount()} parameters, reads ${difFormer.featureKeys().join(', ')}`);
await trainAndScore({
  name: 'DifFormer blocks 8/9/10 x t 50/150',
  module: difFormer,
  inputs: difFormer.featureKeys(),
  forward: (context, features) => difFormer.forward(context, features),
  learningRate: 5e-2,
});
console.log(`done in ${secondsSince(started)} s`);
