/**
 * A stand-in diffusion U-Net for extractor tests: its one block returns the
 * noised input x_t itself (plus the class label, as a number, for a
 * class-conditional variant), so tests can read exactly what the extractor
 * fed the network: the noise, the schedule's coefficients and the labels.
 * It also shows that any `DiffusionUNet` plugs into the extractor.
 */
import { add, cast, reshape, type Graph } from '@diffssl/core';
import type { DiffusionUNet, UNetBuildOptions, UNetOutputs } from '../src/index.js';

export function identityUNet(options: { imageSize?: number; schedule?: 'linear' | 'cosine'; numClasses?: number } = {}): DiffusionUNet {
  const imageSize = options.imageSize ?? 4;
  return {
    info: { imageSize, inChannels: 3, diffusionSteps: 1000, noiseSchedule: options.schedule ?? 'linear', numClasses: options.numClasses },
    blocks: [{ number: 1, part: 'encoder', channels: 3, resolution: imageSize }],
    build(_graph: Graph, { x, classLabels }: UNetBuildOptions): UNetOutputs {
      const output = classLabels ? add(x, reshape(cast(classLabels, 'float32'), ['batch', 1, 1, 1])) : x;
      return { blocks: new Map([[1, output]]) };
    },
    *identity() {
      yield JSON.stringify({ identity: imageSize, schedule: options.schedule, numClasses: options.numClasses });
    },
  };
}
