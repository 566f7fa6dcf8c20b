/**
 * The main job, on the embedded default model and data.
 *
 * Today: trains the GD(L) linear head of the reference fixtures (adaptive
 * average pool to 2x2, flatten, Linear, cross-entropy, SGD) with
 * @diffssl/core alone, and checks the first step against the reference
 * PyTorch numbers stored with the fixtures. The full DiffSSL pipeline (U-Net
 * feature extraction on Fashion-MNIST, attention heads, DifFormer, DifFeed)
 * arrives with @diffssl/unet, @diffssl/pool, @diffssl/difformer,
 * @diffssl/diffeed and @diffssl/eval.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { adaptiveAvgPool2d, compileTrainStep, crossEntropy, Graph, linear, readSafetensors, reshape, sgd, type HostTensor } from '@diffssl/core';

const fixturePath = fileURLToPath(new URL('../packages/core/test/fixtures/heads.safetensors', import.meta.url));
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
console.log('The U-Net feature pipeline (@diffssl/unet) and the other heads arrive with their issues; see README.md.');
