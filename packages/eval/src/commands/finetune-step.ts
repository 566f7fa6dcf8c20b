import { BuildContext, ConfigError, DTypeError, Graph, ShapeError, type HostTensor, type SymbolicTensor } from '@diffssl/core';
import { constantTimesteps } from '@diffssl/diffeed';
import { noiseSchedule, qSampleGraph, type DiffusionUNet, type UNetWeights } from '@diffssl/unet';
import { buildHead, headSpecForm, parseHeadSpec, type BuiltHead, type HeadSpec } from '../heads/head-spec.js';
import { loadUNet } from '../pipeline/unet-source.js';
import { unetModule } from '../protocols/finetune.js';
import { noiseInput, X_START } from '../protocols/diffeed-model.js';
import type { HeadStepOptions } from './head-step.js';
import { isBatchNormBuffer, readJsonFile, readTensorFile } from './options.js';
import { checkLearningRate, inputLabels, runtimeOf, writeReferenceStep } from './reference-step.js';

/** Options of {@link finetuneStep} (the `diffssl finetune-step` command). @public */
export interface FinetuneStepOptions extends Omit<HeadStepOptions, 'input'> {
  /** U-Net weights: `.pt`/`.pth` (torch zip) or `.safetensors`. */
  checkpoint: string;
  /** guided-diffusion flags (a JSON file) or a preset name. */
  config: string;
  /** safetensors with `x_start` [B,3,H,W], `noise/t{T}` for each timestep and `labels` (int64 [B]). */
  input: string;
}

/** What a head spec reads from the U-Net, from its registry form. */
function headReads(spec: HeadSpec): { blocks: number[]; timesteps: number[]; inputName(timestep: number, block: number): string } {
  const form = headSpecForm(spec.kind);
  if (!form.readsFromUNet) {
    throw new ConfigError(`finetune-step: --head kind "${spec.kind}" names no block to read; use "linear" (with block and t_list) or "fusion"`);
  }
  return form.readsFromUNet(spec);
}

/**
 * Builds the logits of a head on a trainable U-Net: `q_sample` of `x_start`
 * with each timestep's noise, the U-Net (weights read through the context)
 * up to the deepest block read, and the head on the full feature maps.
 */
function buildFinetuneLogits(
  context: BuildContext,
  unet: DiffusionUNet,
  weights: UNetWeights,
  head: BuiltHead,
  spec: HeadSpec,
  inputs: { xStart: SymbolicTensor; noise: ReadonlyMap<number, SymbolicTensor> },
): SymbolicTensor {
  const { blocks, timesteps, inputName } = headReads(spec);
  const schedule = noiseSchedule(unet.info.noiseSchedule, unet.info.diffusionSteps);
  const features = new Map<string, SymbolicTensor>();
  for (const t of timesteps) {
    const steps = constantTimesteps(context.graph, t, inputs.xStart);
    const xt = qSampleGraph(schedule, inputs.xStart, inputs.noise.get(t)!, steps);
    const outputs = unet.build(context.graph, { x: xt, timesteps: steps, taps: blocks, trainable: { context, weights } });
    for (const [block, tensor] of outputs.blocks) features.set(inputName(t, block), tensor);
  }
  return head.forward(context, features);
}

/**
 * One fine-tuning step, as the reference's `--mode finetune` takes it: the
 * U-Net (training mode) and the head in one plain SGD optimizer, fresh
 * `q_sample` of `x_start` with the given noise at each timestep, mean
 * cross-entropy on `labels`. Writes `logits`, `loss` [1], and
 * `grad/<name>` and `after_sgd/<name>` for every parameter that gets a
 * gradient: the head's under the reference's names, the U-Net's as
 * `unet.<state_dict name>` (those on the path to the deepest block read;
 * later blocks and `out.*` are frozen).
 *
 * @returns the names written
 * @throws `ConfigError` for a bad head spec, missing inputs, a learning rate that is not finite, or a U-Net that cannot fine-tune (dropout, no trainable weights); `CheckpointMismatchError` and `StateDictMismatchError` for weights that do not fit
 * @public
 */
export async function finetuneStep(options: FinetuneStepOptions): Promise<string[]> {
  checkLearningRate(options.lr);
  const spec = parseHeadSpec(await readJsonFile(options.head, '--head'));
  const { blocks, timesteps, inputName } = headReads(spec);
  const { unet } = await loadUNet({ checkpoint: options.checkpoint, config: options.config });
  const input = await readTensorFile(options.input, '--input');
  const labels = inputLabels(input, options.input);
  const batch = labels.shape[0]!;
  const { imageSize, inChannels } = unet.info;
  const imageShape = [batch, inChannels, imageSize, imageSize];
  const feeds: Record<string, HostTensor> = { labels };
  for (const name of [X_START, ...timesteps.map(noiseInput)]) {
    const tensor = input.get(name);
    if (!tensor) throw new ConfigError(`--input: expected a tensor '${name}' in ${options.input}; found ${[...input.keys()].join(', ')}`);
    if (tensor.dtype !== 'float32') throw new DTypeError(`--input: ${name} must be float32; found ${tensor.dtype}`);
    if (tensor.shape.join() !== imageShape.join())
      throw new ShapeError(
        `--input: ${name} must be [${imageShape.join(', ')}] (labels has ${batch} images; the U-Net takes ${inChannels}x${imageSize}x${imageSize}); found [${tensor.shape.join(', ')}]`,
      );
    feeds[name] = tensor;
  }
  // The head is sized from the blocks' shapes, as it would be from the features.
  const shapes = new Map<string, { shape: number[] }>();
  for (const t of timesteps) {
    for (const block of blocks) {
      const blockShape = unet.blocks[block - 1];
      if (!blockShape) throw new ConfigError(`finetune-step: block ${block} is outside 1..${unet.blocks.length}`);
      shapes.set(inputName(t, block), { shape: [batch, blockShape.channels, blockShape.resolution, blockShape.resolution] });
    }
  }
  const head = buildHead(spec, shapes);
  head.module.loadStateDict(await readTensorFile(options.params, '--params'), { allowMissing: isBatchNormBuffer });
  const weights = unet.trainableWeights();
  const graph = new Graph();
  const context = new BuildContext(graph, [unetModule(weights), head.module], { mode: 'train' });
  const image = (name: string) => graph.input(name, 'float32', ['batch', inChannels, imageSize, imageSize]);
  const logits = buildFinetuneLogits(context, unet, weights, head, spec, {
    xStart: image(X_START),
    noise: new Map(timesteps.map((t) => [t, image(noiseInput(t))])),
  });
  return writeReferenceStep(context, logits, feeds, { ...runtimeOf(options), lr: options.lr, out: options.out, bufferUpdates: false });
}
