// Feature extraction with the embedded Fashion-MNIST U-Net and a head trained in the tab.
// Imports only the packages' shared API, so it runs on onnxruntime-web in the page and on
// onnxruntime-node in the unit test.
import {
  adaptiveAvgPool2d,
  BuildContext,
  compileModel,
  compileModuleTrainStep,
  ConfigError,
  createRunner,
  crossEntropy,
  FormatError,
  Graph,
  HostTensor,
  RandomGenerator,
  readSafetensors,
  sgd,
  type RunnerOptions,
  type SymbolicTensor,
} from '@diffssl/core';
import { createProtocolModel, protocolKind, PROTOCOLS, takesOption, type Protocol, type ProtocolModel } from '@diffssl/eval/heads';
import { AdmUNet, createFeatureExtractor, featureKey, type DiffusionUNet, type GuidedDiffusionFlags } from '@diffssl/unet';
import { argmaxRows } from './pixels.js';

/** The U-Net block and timestep the tab reads (the classifier's too). */
export const TAB_BLOCK = 10;
export const TAB_TIMESTEP = 50;

/**
 * Heads the tab can train: the head registry's kinds that read one block of
 * the pretrained U-Net's frozen features (`linear` and `attention` today; a
 * new kind of that sort appears here by itself).
 */
export const TAB_HEAD_KINDS: readonly Protocol[] = PROTOCOLS.filter((name) => {
  const support = protocolKind(name).protocol;
  return support.examples === 'features' && support.unet === 'pretrained' && support.blocks === 'one';
});

/** A head the tab can train (one of {@link TAB_HEAD_KINDS}). */
export type TabHeadKind = Protocol;

/** The tab's attention width: one transformer block of dim 64 with 4 heads and MLP ratio 2 (the protocol's default has 2 blocks and ratio 4), so it trains in seconds in a tab. */
export const TAB_FUSION_ARC = 'Use_CLS_Token:True:64,Insert_CLS_Token,Attention:64:4:2:1,Extract_CLS_Token';

/** Images and labels for the tab (the first `trainCount` train, the rest held out). */
export interface TabData {
  /** uint8 [N, 1, 28, 28]. */
  images: HostTensor<'uint8'>;
  labels: number[];
  trainCount: number;
  testCount: number;
}

/**
 * Reads the subset written by `scripts/prepare.ts` (`images` uint8 [N,28,28],
 * `labels` uint8 [N], metadata `train` and `test`).
 *
 * @throws `FormatError` for a file without those tensors or counts
 */
export function readTabData(bytes: Uint8Array): TabData {
  const { tensors, metadata } = readSafetensors(bytes);
  const images = tensors.get('images');
  const labels = tensors.get('labels');
  const trainCount = Number(metadata.train);
  const testCount = Number(metadata.test);
  if (
    !images ||
    images.dtype !== 'uint8' ||
    images.rank !== 3 ||
    !labels ||
    labels.size !== images.shape[0] ||
    !(trainCount > 0) ||
    !(testCount > 0) ||
    trainCount + testCount !== images.shape[0]
  ) {
    throw new FormatError('tab data: expected uint8 images [N, H, W], labels [N] and metadata train + test = N');
  }
  return {
    images: images.reshape([images.shape[0]!, 1, images.shape[1]!, images.shape[2]!]) as HostTensor<'uint8'>,
    labels: labels.toArray(),
    trainCount,
    testCount,
  };
}

/**
 * The first `train` training images and the first `test` held-out images of
 * the tab's data (the page's `?tabTrain=` and `?tabTest=`: fewer images for a
 * slow device, such as a software WebGPU adapter).
 *
 * @throws `ConfigError` for counts that are not integers from 1 to what the data holds
 */
export function tabSubset(data: TabData, train: number, test: number): TabData {
  if (!Number.isInteger(train) || train < 1 || train > data.trainCount || !Number.isInteger(test) || test < 1 || test > data.testCount)
    throw new ConfigError(
      `tab subset: expected 1 to ${data.trainCount} training and 1 to ${data.testCount} held-out images; found ${String(train)} and ${String(test)}`,
    );
  if (train === data.trainCount && test === data.testCount) return data;
  const heldOut = data.trainCount;
  const rows = [...Array.from({ length: train }, (_, i) => i), ...Array.from({ length: test }, (_, i) => heldOut + i)];
  const size = data.images.size / data.images.shape[0]!;
  const pixels = new Uint8Array(rows.length * size);
  rows.forEach((row, i) => pixels.set(data.images.data.subarray(row * size, (row + 1) * size), i * size));
  return {
    images: HostTensor.from('uint8', [rows.length, ...data.images.shape.slice(1)], pixels),
    labels: rows.map((row) => data.labels[row]!),
    trainCount: train,
    testCount: test,
  };
}

/** Builds the U-Net from safetensors weights and guided-diffusion flags. */
export function unetFromBytes(weights: Uint8Array, flags: GuidedDiffusionFlags): AdmUNet {
  return new AdmUNet(flags, readSafetensors(weights).tensors);
}

/**
 * Extracts block {@link TAB_BLOCK} at t = {@link TAB_TIMESTEP} for every image
 * (seeded noise keyed by each image's pixels): the first `trainCount` images
 * with the training split's noise stream, the rest with the test split's, as
 * `diffssl train` extracts its two splits.
 *
 * @returns features [N, 64, 7, 7], the milliseconds it took in all and those spent opening the extractor's session
 */
export async function extractTabFeatures(
  unet: AdmUNet,
  images: HostTensor<'uint8'>,
  options: { trainCount: number; runner: RunnerOptions; onProgress?: (done: number, total: number) => void | Promise<void> },
): Promise<{ features: HostTensor<'float32'>; ms: number; sessionMs: number; provider: string }> {
  const start = performance.now();
  const count = images.shape[0]!;
  if (!Number.isInteger(options.trainCount) || options.trainCount < 0 || options.trainCount > count)
    throw new ConfigError(`tab: expected 0 <= trainCount <= ${count}; found ${options.trainCount}`);
  const extractor = await createFeatureExtractor({ unet, blocks: [TAB_BLOCK], timesteps: [TAB_TIMESTEP], batchSize: 32, runner: options.runner });
  const sessionMs = performance.now() - start;
  try {
    let features: HostTensor<'float32'> | undefined;
    const parts = [
      { split: 'train', from: 0, to: options.trainCount },
      { split: 'test', from: options.trainCount, to: count },
    ] as const;
    for (const { split, from, to } of parts) {
      if (to === from) continue;
      for await (const batch of extractor.stream(images.slice([from], [to]), { split })) {
        const part = batch.features.get(featureKey(TAB_TIMESTEP, TAB_BLOCK))!;
        features ??= HostTensor.zeros('float32', [count, ...part.shape.slice(1)]);
        features.data.set(part.data, (from + batch.start) * (part.size / part.shape[0]!));
        await options.onProgress?.(from + batch.start + part.shape[0]!, count);
      }
    }
    if (!features) throw new ConfigError('tab: no images to extract');
    return { features, ms: performance.now() - start, sessionMs, provider: extractor.provider };
  } finally {
    await extractor.release();
  }
}

/**
 * The tab's own training settings, which differ on purpose from the
 * protocols' trainer (`diffssl train`, `runProtocol`: SGD momentum 0, the last
 * partial batch dropped, StepLR x0.1 every 7 epochs): a few hundred images
 * trained for seconds in a browser need momentum and every image of each
 * epoch. {@link tabTrainingSettingsText} states them on the page.
 */
export const TAB_TRAINING = { batchSize: 32, momentum: 0.9, keepsPartialBatch: true, stepLR: false } as const;

/** The note under the tab's form: its training settings, labelled as its own and set against the protocols'. */
export function tabTrainingSettingsText(): string {
  return (
    `This tab's own training settings: SGD with momentum ${TAB_TRAINING.momentum}, batches of ${TAB_TRAINING.batchSize} ` +
    `with the last partial batch kept, and a constant learning rate (no StepLR). They are not the protocols' settings ` +
    '(diffssl train and runProtocol: momentum 0, the last partial batch dropped, the learning rate x0.1 every 7 epochs).'
  );
}

/** Settings of {@link trainTabHead}. */
export interface TabTrainingOptions {
  head: TabHeadKind;
  /** The U-Net the features come from: the head is sized from its block {@link TAB_BLOCK}. */
  unet: DiffusionUNet;
  epochs: number;
  batchSize: number;
  learningRate: number;
  momentum: number;
  seed: number;
  runner: RunnerOptions;
  /** Called after every step with its loss; may await (the page redraws). */
  onStep?: (step: number, loss: number, totalSteps: number) => void | Promise<void>;
}

/** What {@link trainTabHead} measured. */
export interface TabTrainingResult {
  losses: number[];
  /** Loss of each epoch: the mean of its steps. */
  epochLosses: number[];
  /** Held-out accuracy in [0, 1], and the counts it is made of. */
  accuracy: number;
  correct: number;
  heldOut: number;
  steps: number;
  /** Milliseconds spent in train steps only (session runs, feeds, results), and per second. */
  trainMs: number;
  stepsPerSecond: number;
  /** Milliseconds to compile the train step and open its session. */
  compileMs: number;
  provider: string;
  parameters: number;
  /** Predicted class of each held-out image, in order. */
  predictions: number[];
  /** The trained head's weights (PyTorch names). */
  weights: Map<string, HostTensor>;
}

/**
 * The registry's model of a tab head kind on block {@link TAB_BLOCK} at
 * t = {@link TAB_TIMESTEP}, and its logits from the tab's full-size features
 * (pooled in the graph to what the model reads, as the feature cache would).
 */
function createHead(
  kind: TabHeadKind,
  unet: DiffusionUNet,
  seed: number,
): { model: ProtocolModel; forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor } {
  if (!TAB_HEAD_KINDS.includes(kind)) throw new ConfigError(`tab: expected a head of ${TAB_HEAD_KINDS.join(', ')}; found '${kind}'`);
  const model = createProtocolModel(
    {
      protocol: kind,
      blocks: [TAB_BLOCK],
      timesteps: [TAB_TIMESTEP],
      numClasses: 10,
      seed,
      ...(takesOption(kind, 'fusionArc') ? { fusionArc: TAB_FUSION_ARC } : {}),
    },
    unet,
  );
  const [key, input] = [...model.inputs()][0]!;
  const side = input.shape[1]!;
  return { model, forward: (context, x) => model.forward(context, new Map([[key, side < (x.shape[2] as number) ? adaptiveAvgPool2d(x, side) : x]])) };
}

/** A seeded shuffle (core's `RandomGenerator`, one stream per epoch), so that a run is repeatable. */
function shuffled(count: number, seed: number, epoch: number): number[] {
  return new RandomGenerator(seed, epoch).shuffle(Array.from({ length: count }, (_, i) => i));
}

function rows(features: HostTensor<'float32'>, indices: readonly number[]): HostTensor<'float32'> {
  const size = features.size / features.shape[0]!;
  const out = new Float32Array(indices.length * size);
  indices.forEach((index, row) => out.set(features.data.subarray(index * size, (index + 1) * size), row * size));
  return HostTensor.from('float32', [indices.length, ...features.shape.slice(1)], out);
}

/**
 * Trains a head on the first `trainCount` feature maps with SGD and
 * cross-entropy, then scores the held-out rest.
 *
 * @param features - [N, C, h, w]
 * @param labels - N labels
 * @param trainCount - how many of them train; the rest are held out
 */
export async function trainTabHead(
  features: HostTensor<'float32'>,
  labels: readonly number[],
  trainCount: number,
  options: TabTrainingOptions,
): Promise<TabTrainingResult> {
  const [count, channels, height, width] = features.shape as [number, number, number, number];
  if (labels.length !== count || trainCount <= 0 || trainCount >= count)
    throw new ConfigError(`tab: expected ${count} labels and 0 < trainCount < ${count}; found ${labels.length} labels and trainCount ${trainCount}`);
  const block = options.unet.blocks[TAB_BLOCK - 1];
  if (!block || block.channels !== channels || block.resolution !== height || height !== width) {
    throw new ConfigError(
      `tab: expected features of block ${TAB_BLOCK}, [N, ${block?.channels}, ${block?.resolution}, ${block?.resolution}]; found [${features.shape.join(', ')}]`,
    );
  }
  const head = createHead(options.head, options.unet, options.seed);
  const modules = head.model.modules();
  const graph = new Graph();
  const context = new BuildContext(graph, modules, { mode: 'train' });
  const x = graph.input('x', 'float32', ['batch', channels, height, width]);
  const y = graph.input('labels', 'int64', ['batch']);
  const compileStart = performance.now();
  const step = await compileModuleTrainStep({
    context,
    loss: crossEntropy(head.forward(context, x), y),
    optimizer: sgd({ momentum: options.momentum }),
    runner: options.runner,
  });
  const compileMs = performance.now() - compileStart;
  const losses: number[] = [];
  const epochLosses: number[] = [];
  const batchesPerEpoch = Math.ceil(trainCount / options.batchSize);
  const totalSteps = batchesPerEpoch * options.epochs;
  let trainMs = 0;
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const order = shuffled(trainCount, options.seed, epoch);
      let sum = 0;
      for (let b = 0; b < batchesPerEpoch; b++) {
        const indices = order.slice(b * options.batchSize, (b + 1) * options.batchSize);
        const batch = {
          x: rows(features, indices),
          labels: HostTensor.from(
            'int64',
            [indices.length],
            indices.map((i) => BigInt(labels[i]!)),
          ),
        };
        const started = performance.now();
        const { losses: stepLosses } = await step.run(batch, { learningRate: options.learningRate });
        trainMs += performance.now() - started;
        const loss = stepLosses[0]!;
        losses.push(loss);
        sum += loss;
        await options.onStep?.(losses.length, loss, totalSteps);
      }
      epochLosses.push(sum / batchesPerEpoch);
    }
    step.syncModules();
  } finally {
    await step.release();
  }

  // Held-out accuracy with the trained head in eval mode.
  const evalGraph = new Graph();
  const evalContext = new BuildContext(evalGraph, modules, { mode: 'eval' });
  const logits = head.forward(evalContext, evalGraph.input('x', 'float32', ['batch', channels, height, width]));
  const runner = await createRunner(compileModel({ outputs: { logits }, name: 'tab_head' }), options.runner);
  const heldOut = Array.from({ length: count - trainCount }, (_, i) => trainCount + i);
  let predictions: number[];
  try {
    const output = (await runner.run({ x: rows(features, heldOut) })).logits!;
    predictions = argmaxRows(output.toArray(), heldOut.length);
  } finally {
    await runner.release();
  }
  const correct = predictions.filter((predicted, i) => predicted === labels[heldOut[i]!]).length;
  return {
    losses,
    epochLosses,
    accuracy: correct / heldOut.length,
    correct,
    heldOut: heldOut.length,
    steps: losses.length,
    trainMs,
    stepsPerSecond: losses.length / (trainMs / 1000),
    compileMs,
    provider: step.provider,
    parameters: modules.reduce((total, module) => total + module.parameterCount(), 0),
    predictions,
    weights: new Map(modules.flatMap((module) => [...module.stateDict()])),
  };
}
