/**
 * DifFeed against the reference (assets/fixtures/<model>.features.safetensors, feedback case):
 * the feedback outputs and the second-pass blocks computed end to end from the first pass and
 * the fixture's feedback weights; then training through the frozen second pass, and train-mode
 * BatchNorm in the feedback networks against float64 written out.
 */
import {
  add,
  BuildContext,
  compileModuleTrainStep,
  crossEntropy,
  evaluateReference,
  gradients,
  Graph,
  HostTensor,
  mean,
  mul,
  readSafetensors,
  sgd,
  writeSafetensors,
  type SymbolicTensor,
} from '@diffssl/core';
import { DifFormer } from '@diffssl/difformer';
import {
  batchNorm64,
  conv1x1_64,
  embeddedFlags,
  fixturePath,
  fromTensor64,
  loadFeatures,
  randomTensor,
  relativeError,
  relu64,
  runOnnx,
  toTensor64,
} from '@diffssl/testing';
import { AdmUNet, readTorchCheckpoint } from '@diffssl/unet';
import { describe, expect, it } from 'vitest';
import { constantTimesteps, DifFeed, DifFeedClassifier, parseFeedbackArch } from './index.js';

const cpu = { executionProviders: ['cpu'] as const };
const blockName = (n: number) => `block${String(n).padStart(2, '0')}`;

describe.each(['adm-fm28', 'adm-37block-random'] as const)('DifFeed end to end on %s', (model) => {
  it('computes every feedback output and every second-pass block of the reference from the first pass', async () => {
    const fixture = loadFeatures(model);
    const { feedback_b_list: sources, second_fw_b_list: secondBlocks, t, arch, target_block: targets } = fixture.feedback;
    const unet = new AdmUNet(fixture.config as never, await readTorchCheckpoint(fixturePath(`${model}.pt`)));
    const difFeed = new DifFeed({ unet, feedbackFrom: sources, arch });
    for (const source of sources) expect(difFeed.targets.get(source)).toBe(targets[String(source)]);
    // The fixture's weights `feedback/{b}/{j}.*` under the reference's names `feedback_layers.{i}.{j}.*`.
    const weights = new Map<string, HostTensor>();
    sources.forEach((source, i) => {
      for (const [name, tensor] of fixture.tensors)
        if (name.startsWith(`feedback/${source}/`) && name !== `feedback/${source}/output`)
          weights.set(`feedback_layers.${i}.${name.slice(`feedback/${source}/`.length)}`, tensor);
    });
    difFeed.loadStateDict(weights, { allowMissing: (name) => name.endsWith('num_batches_tracked') });
    const graph = new Graph();
    const context = new BuildContext(graph, difFeed);
    const size = unet.config.imageSize;
    const xt = graph.input('x', 'float32', ['batch', 3, size, size]);
    const passes = difFeed.buildPasses(context, { xt, timesteps: graph.input('t', 'int64', ['batch']), firstPassBlocks: [], secondPassBlocks: secondBlocks });
    const outputs: Record<string, SymbolicTensor> = {};
    for (const [source, tensor] of passes.feedback) outputs[`feedback/${source}/output`] = tensor;
    for (const [block, tensor] of passes.second) outputs[blockName(block)] = tensor;
    const result = await runOnnx(outputs, { x: fixture.tensor(`t${t}/x_t`), t: HostTensor.from('int64', [2], [BigInt(t), BigInt(t)]) });
    for (const source of sources)
      expect(relativeError(result[`feedback/${source}/output`]!, fixture.tensor(`feedback/${source}/output`)), `feedback ${source}`).toBeLessThanOrEqual(1e-4);
    for (const block of secondBlocks)
      expect(relativeError(result[blockName(block)]!, fixture.tensor(`feedback/second/${blockName(block)}`)), `second pass block ${block}`).toBeLessThanOrEqual(
        1e-4,
      );
  });
});

describe('feedback arch strings', () => {
  it('builds the layers in nn.Sequential order with the reference semantics of C and C2', async () => {
    const unet = new AdmUNet(embeddedFlags() as never, await readTorchCheckpoint(fixturePath('adm-fm28.pt')));
    // Block 11 (decoder, 64 channels at 7x7) feeds block 9 (64 channels); block 17 (32 channels) feeds block 3 (32).
    const shapes = (arch: string, source: number) =>
      Object.fromEntries([...new DifFeed({ unet, feedbackFrom: [source], arch }).stateDict()].map(([n, v]) => [n, v.shape.join('x')]));
    expect(shapes('C_B_R_C', 14)).toEqual({
      'feedback_layers.0.0.weight': '64x64x1x1',
      'feedback_layers.0.1.weight': '64',
      'feedback_layers.0.1.bias': '64',
      'feedback_layers.0.1.running_mean': '64',
      'feedback_layers.0.1.running_var': '64',
      'feedback_layers.0.1.num_batches_tracked': '',
      'feedback_layers.0.3.weight': '64x1x3x3',
    });
    // Decoder block 16 (64 channels) feeds encoder block 20 - 16 = 4, the 32-channel downsampling block.
    expect([unet.block(16).channels, unet.feedbackTarget(16), unet.block(4).channels]).toEqual([64, 4, 32]);
    expect(shapes('C2_S_C2', 16)).toEqual({ 'feedback_layers.0.0.weight': '64x1x3x3', 'feedback_layers.0.2.weight': '32x64x1x1' });
    expect(shapes('C_G', 16)['feedback_layers.0.1.weight']).toBe('32');
    expect(() => new DifFeed({ unet, feedbackFrom: [16], arch: 'C2_B_R' })).toThrow(/ends with 64 channels but the target block has 32/);
    expect(() => new DifFeed({ unet, feedbackFrom: [5], arch: 'C_B_R' })).toThrow(/block 5 is not a decoder block/);
  });

  it('refuses Res and unknown tokens with the reason', () => {
    expect(() => parseFeedbackArch('C_Res_R')).toThrow(/'Res' is not supported: guided-diffusion's ResBlock needs a timestep embedding/);
    expect(() => parseFeedbackArch('C_X')).toThrow(/token 1 'X' is unknown; expected tokens joined by '_'/);
    expect(parseFeedbackArch('C2_B_S_G_C')).toEqual(['C2', 'B', 'S', 'G', 'C']);
  });
});

describe('DifFeed training through the frozen second pass', () => {
  const fusion = 'Use_CLS_Token:True:16,Insert_CLS_Token,Attention:16:2:2:1,Extract_CLS_Token';

  async function model() {
    const unet = new AdmUNet(embeddedFlags() as never, await readTorchCheckpoint(fixturePath('adm-fm28.pt')));
    const difFeed = new DifFeed({ unet, feedbackFrom: [11, 14], arch: 'C_B_R', seed: 1 });
    const head = DifFormer.fromUNet(unet, { firstPassBlocks: [], secondPassBlocks: [10], timesteps: [50], fusion, prePoolSize: 7, numClasses: 10, seed: 2 });
    return { unet, classifier: new DifFeedClassifier(difFeed, head) };
  }

  it('lowers the loss over a few steps on a fixed batch, training the feedback networks and the head only', async () => {
    const { classifier } = await model();
    const graph = new Graph();
    const context = new BuildContext(graph, classifier.modules(), { mode: 'train' });
    const xStart = graph.input('x_start', 'float32', ['batch', 3, 28, 28]);
    const noise = graph.input('noise', 'float32', ['batch', 3, 28, 28]);
    const labels = graph.input('labels', 'int64', ['batch']);
    const logits = classifier.forward(context, { xStart, noise: new Map([[50, noise]]) });
    const step = await compileModuleTrainStep({ context, loss: crossEntropy(logits, labels), optimizer: sgd({ momentum: 0.9 }), runner: cpu });
    expect(
      Object.keys(step.step.parameters()).every(
        (name) => name.startsWith('feedback_layers.') || !/^(input_blocks|middle_block|output_blocks|time_embed|out)\./.test(name),
      ),
    ).toBe(true);
    expect(Object.keys(step.step.parameters())).toContain('feedback_layers.0.0.weight');
    expect(Object.keys(step.step.buffers())).toEqual([
      'feedback_layers.0.1.running_mean',
      'feedback_layers.0.1.running_var',
      'feedback_layers.1.1.running_mean',
      'feedback_layers.1.1.running_var',
    ]);
    const batch = {
      x_start: randomTensor([8, 3, 28, 28], 1),
      noise: randomTensor([8, 3, 28, 28], 2),
      labels: HostTensor.from('int64', [8], [0, 1, 2, 3, 4, 5, 6, 7].map(BigInt)),
    };
    const losses: number[] = [];
    for (let i = 0; i < 8; i++) losses.push((await step.run(batch, { learningRate: 0.05 })).losses[0]!);
    await step.release();
    // Each step lowers the loss, and by the eighth it has fallen by more than a tenth.
    losses.slice(1).forEach((loss, i) => expect(loss).toBeLessThan(losses[i]!));
    expect(losses[7]!).toBeLessThan(0.9 * losses[0]!);
    step.syncModules();
    expect(classifier.difFeed.stateDict().get('feedback_layers.0.1.num_batches_tracked')!.get()).toBe(8);
  });

  it('saves and loads feedback and head weights as safetensors under the reference names (num_batches_tracked as int64, as PyTorch keeps it)', async () => {
    const { classifier } = await model();
    const bytes = writeSafetensors(classifier.stateDict());
    const file = readSafetensors(bytes);
    expect(file.tensors.get('feedback_layers.1.1.num_batches_tracked')!.dtype).toBe('int64');
    expect([...file.tensors.keys()].filter((name) => !name.startsWith('feedback_layers.')).slice(0, 2)).toEqual([
      'pre_layer.10.1.weight',
      'pre_layer.10.1.bias',
    ]);
    const { classifier: other } = await model();
    const before = other.stateDict().get('feedback_layers.0.0.weight')!.toArray();
    expect(before).toEqual(classifier.stateDict().get('feedback_layers.0.0.weight')!.toArray());
    const fresh = new DifFeedClassifier(
      new DifFeed({ unet: classifier.difFeed.unet, feedbackFrom: [11, 14], arch: 'C_B_R', seed: 9 }),
      DifFormer.fromUNet(classifier.difFeed.unet as AdmUNet, {
        firstPassBlocks: [],
        secondPassBlocks: [10],
        timesteps: [50],
        fusion,
        prePoolSize: 7,
        numClasses: 10,
        seed: 9,
      }),
    );
    expect(fresh.stateDict().get('head.weight')!.toArray()).not.toEqual(classifier.stateDict().get('head.weight')!.toArray());
    fresh.loadStateDict(file.tensors);
    for (const [name, tensor] of classifier.stateDict()) expect(fresh.stateDict().get(name)!.toArray(), name).toEqual(tensor.toArray());
    expect(() => fresh.loadStateDict(new Map([...file.tensors].filter(([name]) => name !== 'head.bias')))).toThrow(/1 missing \(head.bias\)/);
  });

  it('gives the gradient of a feedback weight that finite differences of the two-pass loss give (float64)', async () => {
    const { classifier } = await model();
    const graph = new Graph();
    const context = new BuildContext(graph, classifier.modules(), { mode: 'train' });
    const xStart = graph.input('x_start', 'float32', [2, 3, 28, 28]);
    const noise = graph.input('noise', 'float32', [2, 3, 28, 28]);
    const labels = graph.input('labels', 'int64', [2]);
    const loss = crossEntropy(classifier.forward(context, { xStart, noise: new Map([[50, noise]]) }), labels);
    const weight = context.trainableWeights().find(({ weight: w }) => w.name === 'feedback_layers.0.0.weight')!.weight;
    const [gradient] = gradients(loss, [weight]);
    const feeds = { x_start: randomTensor([2, 3, 28, 28], 3), noise: randomTensor([2, 3, 28, 28], 4), labels: HostTensor.from('int64', [2], [3n, 8n]) };
    const [autodiff] = evaluateReference([gradient!], feeds);
    const original = weight.value!;
    // The element with the largest gradient, so that a zero or tiny wrong gradient cannot pass.
    const analyticValues = autodiff!.toArray();
    const index = analyticValues.reduce((best, v, i) => (Math.abs(v) > Math.abs(analyticValues[best]!) ? i : best), 0);
    const lossWith = (delta: number) => {
      const shifted = original.cast('float64');
      shifted.data[index] = shifted.data[index]! + delta;
      weight.value = shifted as never;
      const [value] = evaluateReference([loss], feeds);
      return value!.get();
    };
    // A small step in float64: the feedback networks' ReLUs make the loss piecewise smooth, and a larger step
    // (1e-3 moves conv outputs by about as much) can carry one of their inputs across zero.
    const h = 1e-5;
    const finiteDifference = (lossWith(h) - lossWith(-h)) / (2 * h);
    weight.value = original;
    const analytic = analyticValues[index]!;
    expect(Math.abs(finiteDifference)).toBeGreaterThan(1e-3);
    expect(Math.abs(analytic - finiteDifference)).toBeLessThanOrEqual(1e-4 * Math.abs(finiteDifference));
    // The same gradient on ONNX Runtime in float32.
    const { gradient: onnx } = await runOnnx({ gradient: gradient! }, feeds);
    expect(Math.abs(onnx!.toArray()[index]! - analytic)).toBeLessThanOrEqual(1e-3 * Math.abs(analytic));
    expect(constantTimesteps(graph, 50, xStart).shape).toEqual([2]);
  });
});

describe('feedback networks with BatchNorm in train mode', () => {
  it('normalize with the batch statistics and move the running statistics once, as PyTorch (float64 written out, from the reference first pass)', async () => {
    const fixture = loadFeatures('adm-fm28');
    const { feedback_b_list: sources, t } = fixture.feedback;
    const unet = new AdmUNet(fixture.config as never, await readTorchCheckpoint(fixturePath('adm-fm28.pt')));
    const difFeed = new DifFeed({ unet, feedbackFrom: sources, arch: 'C_B_R' });
    // The fixture's conv weights; BatchNorm's affine weights and running statistics drawn here, away from 1 and 0.
    const weights = new Map(difFeed.stateDict());
    sources.forEach((source, i) => {
      const channels = fixture.tensor(`feedback/${source}/1.weight`).shape[0]!;
      weights.set(`feedback_layers.${i}.0.weight`, fixture.tensor(`feedback/${source}/0.weight`));
      weights.set(`feedback_layers.${i}.1.weight`, randomTensor([channels], 10 + i, 0.5, 1.5));
      weights.set(`feedback_layers.${i}.1.bias`, randomTensor([channels], 20 + i, -0.5, 0.5));
      weights.set(`feedback_layers.${i}.1.running_mean`, randomTensor([channels], 30 + i, -0.3, 0.3));
      weights.set(`feedback_layers.${i}.1.running_var`, randomTensor([channels], 40 + i, 0.2, 3));
    });
    difFeed.loadStateDict(weights);
    const graph = new Graph();
    const context = new BuildContext(graph, difFeed, { mode: 'train' });
    const xt = graph.input('x', 'float32', [2, 3, 28, 28]);
    const passes = difFeed.buildPasses(context, { xt, timesteps: graph.input('t', 'int64', [2]), firstPassBlocks: [], secondPassBlocks: [] });
    const outputs = sources.map((source) => passes.feedback.get(source)!);
    // A loss that reads every feedback output, so that one train step runs (and updates the statistics) once.
    const loss = outputs.map((output) => mean(mul(output, output))).reduce((a, b) => add(a, b));
    const names = sources.map((_, i) => `out${i}`);
    const step = await compileModuleTrainStep({
      context,
      loss,
      optimizer: sgd(),
      runner: cpu,
      outputs: Object.fromEntries(outputs.map((output, i) => [names[i]!, output])),
    });
    const feeds = { x: fixture.tensor(`t${t}/x_t`), t: HostTensor.from('int64', [2], [BigInt(t), BigInt(t)]) };
    const result = await step.run(feeds, { learningRate: 0 });
    step.syncModules();
    await step.release();
    sources.forEach((source, i) => {
      // conv 1x1 (no bias) -> BatchNorm2d(train) -> ReLU on the reference's first-pass block, in float64.
      const conv = conv1x1_64(
        toTensor64(fixture.tensor(`t${t}/${blockName(source)}`)),
        weights.get(`feedback_layers.${i}.0.weight`)!.toArray(),
        undefined,
        weights.get(`feedback_layers.${i}.1.weight`)!.shape[0]!,
      );
      const norm = batchNorm64(
        conv,
        {
          weight: weights.get(`feedback_layers.${i}.1.weight`)!.toArray(),
          bias: weights.get(`feedback_layers.${i}.1.bias`)!.toArray(),
          runningMean: weights.get(`feedback_layers.${i}.1.running_mean`)!.toArray(),
          runningVar: weights.get(`feedback_layers.${i}.1.running_var`)!.toArray(),
        },
        'train',
      );
      expect(relativeError(result.outputs[names[i]!]!, fromTensor64(relu64(norm.output))), `feedback ${source} output`).toBeLessThanOrEqual(1e-4);
      // In eval mode (the fixture's) the output differs: the batch statistics are really used.
      expect(
        relativeError(
          result.outputs[names[i]!]!,
          fromTensor64(
            relu64(
              batchNorm64(
                conv,
                {
                  weight: weights.get(`feedback_layers.${i}.1.weight`)!.toArray(),
                  bias: weights.get(`feedback_layers.${i}.1.bias`)!.toArray(),
                  runningMean: norm.runningMean,
                  runningVar: norm.runningVar,
                },
                'eval',
              ).output,
            ),
          ),
        ),
      ).toBeGreaterThan(1e-2);
      const state = difFeed.stateDict();
      for (const [buffer, expected] of [
        ['running_mean', norm.runningMean],
        ['running_var', norm.runningVar],
      ] as const) {
        const name = `feedback_layers.${i}.1.${buffer}`;
        expect(relativeError(state.get(name)!, HostTensor.from('float64', [expected.length], expected)), name).toBeLessThanOrEqual(1e-5);
        expect(relativeError(weights.get(name)!, HostTensor.from('float64', [expected.length], expected)), `${name} moved`).toBeGreaterThan(1e-3);
      }
      expect(state.get(`feedback_layers.${i}.1.num_batches_tracked`)!.get()).toBe(1);
    });
  });
});
