// Browser-safe: imported by the web page through `@diffssl/eval/classifier`.
import { ConfigError, HostTensor, ShapeError } from '@diffssl/core';
import { pixelNoiseId, seededNoise } from '@diffssl/unet';

/** The sidecar of an exported classifier (`<model>.json` beside `<model>.onnx`). @public */
export interface ExportedClassifierInfo {
  /** Always `'diffssl-classifier'`. */
  format: 'diffssl-classifier';
  /** The sidecar's format version (1). */
  version: 1;
  /** The protocol it was trained with. */
  protocol: string;
  /** Class names in logit order. */
  classNames: string[];
  /** Side of the square images it takes. */
  imageSize: number;
  /** Channels of the `images` input (gray images are replicated to RGB first). */
  channels: number;
  /** Timesteps fed to the `timesteps` input, in order (empty for the raw-pixel baseline). */
  timesteps: number[];
  /** Seed of the noise: image i at timestep t gets `seededNoise(noiseSeed, pixelNoiseId(image i), t, C*H*W, 'test')` (the test split's stream, as evaluation). */
  noiseSeed: number;
  /** The model's inputs: `images` [B,C,H,W] float32 in [-1, 1], then (unless pixels) `noise` [B,T,C,H,W] float32 and `timesteps` int64 [T]. */
  inputs: string[];
  /** The settings it was trained with. */
  settings: Record<string, unknown>;
}

/**
 * The inputs of an exported classifier for some images: the images, their
 * seeded noise at every timestep (each image's noise keyed by a hash of its
 * pixels in the test split's stream, so the same image always gets the same
 * noise), and the timesteps.
 * The Node pipeline and the web page both feed the model with this.
 *
 * @param info - the model's sidecar
 * @param images - float32 [B, C, H, W] in [-1, 1], C = `info.channels`
 * @returns the feeds by input name
 * @throws `ShapeError` for images of another shape
 * @public
 */
export function classifierFeeds(info: ExportedClassifierInfo, images: HostTensor): Record<string, HostTensor> {
  const { imageSize, channels, timesteps } = info;
  if (images.dtype !== 'float32' || images.rank !== 4 || images.shape[1] !== channels || images.shape[2] !== imageSize || images.shape[3] !== imageSize) {
    throw new ShapeError(
      `classifier: expected float32 images [B, ${channels}, ${imageSize}, ${imageSize}] in [-1, 1]; found ${images.dtype}[${images.shape.join(', ')}]`,
    );
  }
  if (info.format !== 'diffssl-classifier') throw new ConfigError(`classifier: expected a diffssl-classifier sidecar; found format ${String(info.format)}`);
  if (!info.inputs.includes('noise')) return { images };
  const batch = images.shape[0]!;
  const size = channels * imageSize * imageSize;
  const dense = images.contiguous() as HostTensor<'float32'>;
  const noise = new Float32Array(batch * timesteps.length * size);
  for (let i = 0; i < batch; i++) {
    const id = pixelNoiseId(dense.data.subarray(i * size, (i + 1) * size));
    timesteps.forEach((t, k) => noise.set(seededNoise(info.noiseSeed, id, t, size, 'test'), (i * timesteps.length + k) * size));
  }
  return {
    images: dense,
    noise: HostTensor.from('float32', [batch, timesteps.length, channels, imageSize, imageSize], noise),
    timesteps: HostTensor.from('int64', [timesteps.length], timesteps.map(BigInt)),
  };
}

/**
 * Softmax probabilities and the top classes of one row of logits.
 *
 * @param logits - the model's logits [B, K]
 * @param row - which image
 * @param names - class names
 * @param count - how many classes to return (default 3)
 * @public
 */
export function topClasses(
  logits: HostTensor,
  row: number,
  names: readonly string[],
  count = 3,
): {
  /** The class name (its index as text when `names` has none). */
  name: string;
  /** The class index. */
  index: number;
  /** Its softmax probability. */
  probability: number;
}[] {
  const k = logits.shape[1]!;
  const values = logits.toArray().slice(row * k, (row + 1) * k);
  const top = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps
    .map((e, index) => ({ index, name: names[index] ?? String(index), probability: e / total }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, count);
}
