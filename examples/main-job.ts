/**
 * The main job, on the embedded default model and data.
 *
 * Today:
 * 1. extracts features of the embedded Fashion-MNIST diffusion U-Net
 *    (`shared/fixtures/adm-fm28.pt`) for the fixture images at every block,
 *    checks them against the reference PyTorch features, and extracts block 10
 *    at t=50 with seeded noise;
 * 2. trains the GD(L) linear head of the reference fixtures (adaptive average
 *    pool to 2x2, flatten, Linear, cross-entropy, SGD) and checks the first step
 *    against the reference numbers.
 * The heads, DifFormer, DifFeed and the Fashion-MNIST evaluation arrive with
 * @diffssl/pool, @diffssl/difformer, @diffssl/diffeed and @diffssl/eval.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { adaptiveAvgPool2d, compileModel, compileTrainStep, createRunner, crossEntropy, Graph, HostTensor, linear, readSafetensors, reshape, sgd, type SymbolicTensor } from '@diffssl/core';
import { AdmUNet, createFeatureExtractor, featureKey, readTorchCheckpoint, type GuidedDiffusionFlags } from '@diffssl/unet';

const assets = fileURLToPath(new URL('../assets/', import.meta.url));
const reference = readSafetensors(readFileSync(`${assets}fixtures/adm-fm28.features.safetensors`));
const flags = JSON.parse(readFileSync(`${assets}models/adm-fm28/flags.json`, 'utf8')) as GuidedDiffusionFlags;
const unet = new AdmUNet(flags, await readTorchCheckpoint(`${assets}models/adm-fm28/adm-fm28.pt`));
{
  const graph = new Graph();
  const x = graph.input('x', 'float32', ['batch', 3, 28, 28]);
  const t = graph.input('t', 'int64', ['batch']);
  const taps = Array.from({ length: unet.blockCount }, (_, i) => i + 1);
  const { blocks } = unet.build(graph, { x, timesteps: t, taps });
  const outputs: Record<string, SymbolicTensor> = Object.fromEntries([...blocks].map(([n, tensor]) => [`block${String(n).padStart(2, '0')}`, tensor]));
  const runner = await createRunner(compileModel({ outputs }), { executionProviders: ['cpu'] });
  const result = await runner.run({ x: reference.tensors.get('t150/x_t')!, t: HostTensor.from('int64', [2], [150n, 150n]) });
  await runner.release();
  let worst = 0;
  for (const [name, tensor] of Object.entries(result)) {
    const expected = reference.tensors.get(`t150/${name}`)!.toArray();
    const scale = Math.max(1, ...expected.map(Math.abs));
    worst = Math.max(worst, Math.max(...tensor.toArray().map((v, i) => Math.abs(v - expected[i]!))) / scale);
  }
  console.log(`U-Net adm-fm28 (${unet.blockCount} blocks): all block outputs at t=150 match the reference PyTorch features, worst relative error ${worst.toExponential(2)}`);
  const extractor = await createFeatureExtractor({ unet, blocks: [10], timesteps: [50], runner: { executionProviders: ['cpu'] } });
  const features = await extractor.extract(reference.tensors.get('x_start')!);
  await extractor.release();
  console.log(`seeded-noise features ${featureKey(50, 10)}: [${features.get(featureKey(50, 10))!.shape.join(', ')}]`);
}

const fixturePath = `${assets}fixtures/heads.safetensors`;
const fixture = readSafetensors(readFileSync(fixturePath));
const tensor = (name: string): HostTensor => {
  const value = fixture.tensors.get(name);
  if (!value) throw new Error(`main job: the fixture ${fixturePath} has no tensor '${name}'`);
  return value;
};

const graph = new Graph();
const input = tensor('linear/input');
const x = graph.input('x', 'float32', ['batch', ...input.shape.slice(1)]);
const labels = graph.input('labels', 'int64', ['batch']);
const weight = graph.weight('fcs.0.weight', tensor('linear/param/fcs.0.weight'));
const bias = graph.weight('fcs.0.bias', tensor('linear/param/fcs.0.bias'));
const logits = linear(reshape(adaptiveAvgPool2d(x, 2), ['batch', -1]), weight, bias);
const step = await compileTrainStep({
  loss: crossEntropy(logits, labels),
  parameters: [weight, bias],
  optimizer: sgd(),
  runner: { executionProviders: ['cuda', 'cpu'], onWarning: (message) => console.log(`note: ${message}`) },
});

const learningRate = Number(fixture.metadata['linear/lr']);
const feeds = { x: input, labels: tensor('labels') };
console.log(`GD(L) head on ${input.shape[0]} reference feature maps [${input.shape.slice(1).join(', ')}], provider ${step.provider}, lr ${learningRate}`);
const steps = 20;
for (let i = 0; i < steps; i++) {
  const { losses } = await step.run(feeds, { learningRate });
  if (i === 0) {
    const reference = tensor('linear/loss').get(0);
    const after = step.parameters()['fcs.0.weight']!.toArray();
    const expected = tensor('linear/after_sgd/fcs.0.weight').toArray();
    const worst = Math.max(...after.map((v, k) => Math.abs(v - expected[k]!)));
    console.log(`step 1: loss ${losses[0]!.toFixed(6)} (reference PyTorch ${reference.toFixed(6)}); max |weight - reference after SGD| = ${worst.toExponential(2)}`);
  } else if ((i + 1) % 5 === 0) {
    console.log(`step ${i + 1}: loss ${losses[0]!.toFixed(6)}`);
  }
}
await step.release();
console.log('The attention heads, DifFormer, DifFeed and the Fashion-MNIST evaluation arrive with their issues; see README.md.');
