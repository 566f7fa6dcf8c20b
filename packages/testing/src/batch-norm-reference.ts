/**
 * PyTorch's semantics written out in float64 with plain loops, independent of
 * the graph code: `AdaptiveAvgPool2d` (bins start=floor(i*in/out),
 * end=ceil((i+1)*in/out)) and `BatchNorm2d` in training mode applied several
 * times in one forward pass (each application normalizes with its own batch
 * statistics and updates the running statistics once, in order, with the
 * unbiased variance; `num_batches_tracked` counts the applications).
 */

/** A dense float64 NCHW array. */
export interface Float64Map {
  shape: [number, number, number, number];
  data: Float64Array;
}

/** `nn.AdaptiveAvgPool2d(size)` of an NCHW array. */
export function adaptiveAvgPool2dFloat64(x: Float64Map, size: number): Float64Map {
  const [n, c, h, w] = x.shape;
  const out = new Float64Array(n * c * size * size);
  for (let plane = 0; plane < n * c; plane++) {
    for (let i = 0; i < size; i++) {
      const rowStart = Math.floor((i * h) / size);
      const rowEnd = Math.ceil(((i + 1) * h) / size);
      for (let j = 0; j < size; j++) {
        const colStart = Math.floor((j * w) / size);
        const colEnd = Math.ceil(((j + 1) * w) / size);
        let total = 0;
        for (let r = rowStart; r < rowEnd; r++) for (let q = colStart; q < colEnd; q++) total += x.data[plane * h * w + r * w + q]!;
        out[plane * size * size + i * size + j] = total / ((rowEnd - rowStart) * (colEnd - colStart));
      }
    }
  }
  return { shape: [n, c, size, size], data: out };
}

/** The state of one `BatchNorm2d`. */
export interface BatchNormState {
  weight: Float64Array;
  bias: Float64Array;
  runningMean: Float64Array;
  runningVar: Float64Array;
  numBatchesTracked: number;
}

/**
 * One training-mode application of `BatchNorm2d`: returns the normalized map
 * and advances `state`'s running statistics and counter in place, as PyTorch's
 * in-place buffer updates do.
 */
export function batchNormTrainFloat64(x: Float64Map, state: BatchNormState, momentum = 0.1, epsilon = 1e-5): Float64Map {
  const [n, c, h, w] = x.shape;
  const count = n * h * w;
  const out = new Float64Array(x.data.length);
  for (let channel = 0; channel < c; channel++) {
    let total = 0;
    for (let b = 0; b < n; b++) for (let k = 0; k < h * w; k++) total += x.data[(b * c + channel) * h * w + k]!;
    const mean = total / count;
    let squares = 0;
    for (let b = 0; b < n; b++) for (let k = 0; k < h * w; k++) squares += (x.data[(b * c + channel) * h * w + k]! - mean) ** 2;
    const biased = squares / count;
    const inverseStd = 1 / Math.sqrt(biased + epsilon);
    for (let b = 0; b < n; b++) {
      for (let k = 0; k < h * w; k++) {
        const at = (b * c + channel) * h * w + k;
        out[at] = (x.data[at]! - mean) * inverseStd * state.weight[channel]! + state.bias[channel]!;
      }
    }
    state.runningMean[channel] = (1 - momentum) * state.runningMean[channel]! + momentum * mean;
    state.runningVar[channel] = (1 - momentum) * state.runningVar[channel]! + momentum * (squares / (count - 1));
  }
  state.numBatchesTracked += 1;
  return { shape: x.shape, data: out };
}
