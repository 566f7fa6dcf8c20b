import { ShapeError, ConfigError, HostTensor } from '@diffssl/core';

/**
 * Pools feature maps into feature vectors for the probes: adaptive average
 * pooling to `size` x `size` with PyTorch's `adaptive_avg_pool2d` windows
 * (rows floor(i·h/s) to ceil((i+1)·h/s)), flattened in [C, s, s] order, as the
 * reference's GD(L) head does with `pre_pool_size`.
 *
 * @param features - [N, C, h, w]
 * @param size - output side s (default 1: global average)
 * @returns float32 [N, C·s·s]
 * @throws {@link @diffssl/core!ShapeError} for a tensor that is not rank 4; {@link @diffssl/core!ConfigError} for s < 1 or s > min(h, w)
 * @public
 */
export function poolFeatures(features: HostTensor, size = 1): HostTensor<'float32'> {
  if (features.rank !== 4) throw new ShapeError(`poolFeatures: expected features [N, C, h, w]; found [${features.shape.join(', ')}]`);
  const [n, c, h, w] = features.shape as [number, number, number, number];
  if (!Number.isSafeInteger(size) || size < 1 || size > Math.min(h, w))
    throw new ConfigError(`poolFeatures: size must be an integer in 1..${Math.min(h, w)}; found ${size}`);
  const source = features.dtype === 'float32' || features.dtype === 'float64' ? features.contiguous() : features.cast('float32');
  const data = source.data as Float32Array | Float64Array;
  const base = source.offset;
  const out = new Float32Array(n * c * size * size);
  const starts = (length: number) => Array.from({ length: size }, (_, i) => [Math.floor((i * length) / size), Math.ceil(((i + 1) * length) / size)] as const);
  const rows = starts(h);
  const cols = starts(w);
  let o = 0;
  for (let plane = 0; plane < n * c; plane++) {
    const offset = base + plane * h * w;
    for (const [r0, r1] of rows) {
      for (const [c0, c1] of cols) {
        let sum = 0;
        for (let r = r0; r < r1; r++) for (let q = c0; q < c1; q++) sum += data[offset + r * w + q]!;
        out[o++] = sum / ((r1 - r0) * (c1 - c0));
      }
    }
  }
  return HostTensor.from('float32', [n, c * size * size], out);
}
