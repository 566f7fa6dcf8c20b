import { ConfigError, slice, type BuildContext } from '@diffssl/core';
import { PixelClassifier } from '../../protocols/pixels.js';
import type { ImageInputs } from '../../protocols/feature-head.js';
import type { ProtocolHeadKind } from '../head-kind.js';

/**
 * `pixels`: the raw-pixel baseline, a Linear layer on the flattened pixels in
 * [-1, 1] (gray images keep one channel).
 *
 * @public
 */
export const pixelsHeadKind: ProtocolHeadKind<'pixels'> = {
  name: 'pixels',
  summary: 'baseline: Linear on the raw pixels in [-1, 1]',
  protocol: {
    learningRate: 1e-2,
    prePoolSize: 0,
    examples: 'pixels',
    unet: 'none',
    blocks: 'none',
    options: [],
    createModel: (settings, { imageShape }) => {
      if (!imageShape) throw new ConfigError('pixels: the raw-pixel baseline needs the image shape');
      const model = new PixelClassifier(imageShape, settings.numClasses, settings.seed ?? 0);
      return Object.assign(model, {
        timesteps: [] as number[],
        forwardImages: (context: BuildContext, inputs: ImageInputs) => {
          const images = imageShape[0] === 1 && inputs.images.shape[1] !== 1 ? slice(inputs.images, [0], [1], [1]) : inputs.images;
          return model.head.forward(context, images);
        },
      });
    },
  },
};
