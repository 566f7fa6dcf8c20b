import { ConfigError, HostTensor, ShapeError } from '@diffssl/core';

/**
 * A resampling filter of {@link resizeImage}, with PIL's semantics:
 * `box` is `Image.BOX`, `bicubic` is `Image.BICUBIC` (Keys cubic, a = -0.5).
 *
 * @public
 */
export type ResampleFilter = 'box' | 'bicubic';

interface FilterDefinition {
  readonly support: number;
  readonly weight: (x: number) => number;
}

const FILTERS: Readonly<Record<ResampleFilter, FilterDefinition>> = {
  box: { support: 0.5, weight: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
};

/** PIL's fixed-point precision of the 8-bit resampling coefficients. */
const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;

interface Coefficients {
  /** Per output pixel: first input index and number of taps. */
  readonly bounds: Int32Array;
  /** Per output pixel: `taps` fixed-point weights (row of length `taps`). */
  readonly weights: Int32Array;
  readonly taps: number;
}

/**
 * PIL's `precompute_coeffs` followed by `normalize_coeffs_8bpc`: for each
 * output pixel the input range and the normalized weights in fixed point,
 * computed in float64 exactly as Pillow's C code does.
 */
function precomputeCoefficients(inSize: number, outSize: number, filter: FilterDefinition): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * taps);
  const row = new Float64Array(taps);
  const inverseScale = 1 / filterScale;
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    const first = Math.max(Math.trunc(center - support + 0.5), 0);
    const last = Math.min(Math.trunc(center + support + 0.5), inSize);
    const count = last - first;
    let total = 0;
    for (let x = 0; x < count; x++) {
      const weight = filter.weight((x + first - center + 0.5) * inverseScale);
      row[x] = weight;
      total += weight;
    }
    for (let x = 0; x < count; x++) {
      const normalized = total !== 0 ? row[x]! / total : row[x]!;
      weights[out * taps + x] = normalized < 0 ? Math.trunc(-0.5 + normalized * ONE) : Math.trunc(0.5 + normalized * ONE);
    }
    bounds[out * 2] = first;
    bounds[out * 2 + 1] = count;
  }
  return { bounds, weights, taps };
}

/** The contiguous planes of a uint8 [C,H,W] image. */
export function imagePlanes(image: HostTensor<'uint8'>, what = 'image'): { data: Uint8Array; channels: number; height: number; width: number } {
  if (image.dtype !== 'uint8' || image.rank !== 3) {
    throw new ShapeError(`${what}: expected a uint8 [C,H,W] image; found ${image.dtype}[${image.shape.join(', ')}]`);
  }
  const [channels, height, width] = image.shape as [number, number, number];
  return { data: image.contiguous().data, channels, height, width };
}

/**
 * Resizes a uint8 [C,H,W] image exactly as Pillow's `Image.resize(size,
 * resample)` does for 8-bit images (Pillow 4-11, `Resample.c`): a separable
 * convolution, horizontal pass first, whose float64 weights are normalized
 * per output pixel and rounded to 22-bit fixed point; each pass rounds and
 * clips to 0..255. The filter support grows with the downscale factor (so
 * BICUBIC downscaling is antialiased and BOX averages whole input pixels). A
 * pass whose size does not change is skipped, as in Pillow.
 *
 * @param image - uint8 [C,H,W] (each channel is resampled independently)
 * @param width - output width
 * @param height - output height
 * @param filter - `box` or `bicubic`
 * @returns a new uint8 [C,height,width] image (the input itself when the size is unchanged)
 * @throws `ShapeError` for a non-uint8 or non-[C,H,W] image; `ConfigError` for a non-positive size
 * @example
 * ```ts
 * const half = resizeImage(image, image.shape[2] >> 1, image.shape[1] >> 1, 'box');
 * ```
 * @public
 */
export function resizeImage(image: HostTensor<'uint8'>, width: number, height: number, filter: ResampleFilter): HostTensor<'uint8'> {
  const planes = imagePlanes(image, 'resizeImage');
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(`resizeImage: ${name} must be a positive integer; found ${value}`);
  }
  const definition = FILTERS[filter];
  if (!definition) throw new ConfigError(`resizeImage: filter must be 'box' or 'bicubic'; found '${String(filter)}'`);
  if (planes.width === width && planes.height === height) return image;
  let { data, width: currentWidth } = planes;
  const { channels, height: inHeight } = planes;
  const vertical = precomputeCoefficients(inHeight, height, definition);
  // Rows of the input that the vertical pass reads (Pillow resamples only those horizontally).
  const firstRow = vertical.bounds[0]!;
  const lastRow = vertical.bounds[(height - 1) * 2]! + vertical.bounds[(height - 1) * 2 + 1]!;
  let rowOffset = 0;
  let rows = inHeight;
  if (width !== currentWidth) {
    const horizontal = precomputeCoefficients(currentWidth, width, definition);
    rows = lastRow - firstRow;
    const out = new Uint8ClampedArray(channels * rows * width);
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < rows; y++) {
        const inRow = (c * inHeight + y + firstRow) * currentWidth;
        const outRow = (c * rows + y) * width;
        for (let x = 0; x < width; x++) {
          const first = horizontal.bounds[x * 2]!;
          const count = horizontal.bounds[x * 2 + 1]!;
          const k = x * horizontal.taps;
          let sum = HALF;
          for (let i = 0; i < count; i++) sum += data[inRow + first + i]! * horizontal.weights[k + i]!;
          // Arithmetic shift then clamp (the Uint8ClampedArray store) is Pillow's clip8.
          out[outRow + x] = sum >> PRECISION_BITS;
        }
      }
    }
    data = new Uint8Array(out.buffer);
    currentWidth = width;
    rowOffset = firstRow;
  }
  if (height !== inHeight) {
    const out = new Uint8ClampedArray(channels * height * currentWidth);
    // Row-wise accumulation (each tap adds a whole input row): the same integer sums as Pillow's
    // per-pixel loop, in an order that reads memory contiguously. Float64 holds them exactly.
    const sums = new Float64Array(currentWidth);
    for (let c = 0; c < channels; c++) {
      const plane = c * rows * currentWidth;
      for (let y = 0; y < height; y++) {
        const first = vertical.bounds[y * 2]! - rowOffset;
        const count = vertical.bounds[y * 2 + 1]!;
        const k = y * vertical.taps;
        sums.fill(HALF);
        for (let i = 0; i < count; i++) {
          const weight = vertical.weights[k + i]!;
          const inRow = plane + (first + i) * currentWidth;
          for (let x = 0; x < currentWidth; x++) sums[x] = sums[x]! + data[inRow + x]! * weight;
        }
        const outRow = (c * height + y) * currentWidth;
        for (let x = 0; x < currentWidth; x++) out[outRow + x] = sums[x]! >> PRECISION_BITS;
      }
    }
    data = new Uint8Array(out.buffer);
  }
  return new HostTensor('uint8', data, [channels, height, currentWidth]);
}
