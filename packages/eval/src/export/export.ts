import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  BuildContext,
  broadcastTo,
  compileModel,
  ConfigError,
  Graph,
  reshape,
  saveModel,
  slice,
  softmax,
  type OnnxModel,
  type SymbolicTensor,
} from '@diffssl/core';
import type { ProtocolModel } from '../protocols/protocol.js';
import type { ExportedClassifierInfo } from './classifier-inputs.js';

/** Options of {@link exportClassifier}. @public */
export interface ExportOptions {
  /** The trained model. */
  model: ProtocolModel;
  /** The `.onnx` file to write (the sidecar goes to the same name with `.json`). */
  path: string;
  /** The protocol's name. */
  protocol: string;
  /** Class names in logit order. */
  classNames: readonly string[];
  /** Side of the square images. */
  imageSize: number;
  /** Channels of the images (3 for the U-Net protocols). */
  channels: number;
  /** Seed of the noise the sidecar tells users to draw. */
  noiseSeed: number;
  /** The settings to record. */
  settings?: Record<string, unknown>;
}

/**
 * The standalone inference graph of a trained model: `images` (and, unless
 * raw pixels, `noise` [B, T, C, H, W] and `timesteps` int64 [T]) in; `logits`
 * and `probabilities` out. For the U-Net protocols it holds the frozen U-Net up
 * to its deepest block read (both passes for DifFeed) and the head, in eval mode.
 *
 * @public
 */
export function classifierGraph(model: ProtocolModel, imageSize: number, channels: number): OnnxModel {
  const graph = new Graph();
  const context = new BuildContext(graph, model.modules(), { mode: 'eval' });
  const images = graph.input('images', 'float32', ['batch', channels, imageSize, imageSize]);
  const count = model.timesteps.length;
  const noise = new Map<number, SymbolicTensor>();
  const timesteps = new Map<number, SymbolicTensor>();
  if (count > 0) {
    const noiseInput = graph.input('noise', 'float32', ['batch', count, channels, imageSize, imageSize]);
    const timestepInput = graph.input('timesteps', 'int64', [count]);
    model.timesteps.forEach((t, k) => {
      noise.set(t, reshape(slice(noiseInput, [k], [k + 1], [1]), ['batch', channels, imageSize, imageSize]));
      timesteps.set(t, broadcastTo(slice(timestepInput, [k], [k + 1], [0]), ['batch']));
    });
  }
  const logits = model.forwardImages(context, { images, noise, timesteps });
  return compileModel({ outputs: { logits, probabilities: softmax(logits, -1) }, name: 'diffssl_classifier' });
}

/**
 * Exports a trained model as one standalone ONNX inference model plus its
 * JSON sidecar (class names, timesteps, the noise rule), loadable by
 * onnxruntime-node and onnxruntime-web alike.
 *
 * @returns the paths written
 * @throws `ConfigError` when the path does not end in `.onnx` or cannot be written
 * @public
 */
export async function exportClassifier(options: ExportOptions): Promise<{
  /** The ONNX model's path. */
  onnx: string;
  /** The JSON sidecar's path (the model's, ending in `.json`). */
  json: string;
}> {
  if (!options.path.endsWith('.onnx')) throw new ConfigError(`export: the model path must end in .onnx; found ${options.path}`);
  const model = classifierGraph(options.model, options.imageSize, options.channels);
  const json = options.path.replace(/\.onnx$/, '.json');
  const info: ExportedClassifierInfo = {
    format: 'diffssl-classifier',
    version: 1,
    protocol: options.protocol,
    classNames: [...options.classNames],
    imageSize: options.imageSize,
    channels: options.channels,
    timesteps: [...options.model.timesteps],
    noiseSeed: options.noiseSeed,
    inputs: model.inputs.map((input) => input.name),
    settings: options.settings ?? {},
  };
  try {
    await mkdir(dirname(options.path), { recursive: true });
    await saveModel(model, options.path);
    await writeFile(json, `${JSON.stringify(info, null, 2)}\n`);
  } catch (cause) {
    throw new ConfigError(`export: cannot write ${options.path}: ${(cause as Error).message}`);
  }
  return { onnx: options.path, json };
}
