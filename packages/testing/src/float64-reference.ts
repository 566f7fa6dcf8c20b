import { HostTensor } from '@diffssl/core';

/**
 * Float64 forward passes written out as plain loops, independent of the
 * project's graph layer and of its reference kernels: what the heads and
 * feedback networks should compute, from the PyTorch semantics spelled out
 * in the reference fixtures' README. Tests compare the ONNX graphs with them.
 */

/** A float64 tensor: a shape and row-major values. */
export interface Tensor64 {
  /** The dimensions. */
  shape: number[];
  /** The values, row-major. */
  data: Float64Array;
}

/** A float64 copy of a host tensor. */
export function toTensor64(tensor: HostTensor): Tensor64 {
  return { shape: [...tensor.shape], data: Float64Array.from(tensor.toArray()) };
}

/** The float64 tensor as a host tensor (float64). */
export function fromTensor64(tensor: Tensor64): HostTensor<'float64'> {
  return HostTensor.from('float64', tensor.shape, tensor.data);
}

const values = (weights: ReadonlyMap<string, HostTensor>, name: string): number[] => {
  const tensor = weights.get(name);
  if (!tensor) throw new Error(`float64 reference: no weight '${name}'; have ${[...weights.keys()].join(', ')}`);
  return tensor.toArray();
};

/** `nn.AdaptiveAvgPool2d(size)` on [B, C, H, W]: output cell i averages rows floor(i*H/s) .. ceil((i+1)*H/s) - 1 (likewise columns). */
export function adaptiveAvgPool64(x: Tensor64, size: number): Tensor64 {
  const [b, c, h, w] = x.shape as [number, number, number, number];
  const out = new Float64Array(b * c * size * size);
  for (let n = 0; n < b * c; n++) {
    for (let i = 0; i < size; i++) {
      const [r0, r1] = [Math.floor((i * h) / size), Math.ceil(((i + 1) * h) / size)];
      for (let j = 0; j < size; j++) {
        const [c0, c1] = [Math.floor((j * w) / size), Math.ceil(((j + 1) * w) / size)];
        let sum = 0;
        for (let r = r0; r < r1; r++) for (let q = c0; q < c1; q++) sum += x.data[n * h * w + r * w + q]!;
        out[n * size * size + i * size + j] = sum / ((r1 - r0) * (c1 - c0));
      }
    }
  }
  return { shape: [b, c, size, size], data: out };
}

/** `nn.Linear` on [N, in]: x W^T + b. */
export function linear64(x: Tensor64, weight: readonly number[], bias: readonly number[] | undefined, outFeatures: number): Tensor64 {
  const [rows, inFeatures] = [x.shape.slice(0, -1).reduce((a, v) => a * v, 1), x.shape[x.shape.length - 1]!];
  const out = new Float64Array(rows * outFeatures);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outFeatures; o++) {
      let sum = bias ? bias[o]! : 0;
      for (let i = 0; i < inFeatures; i++) sum += x.data[r * inFeatures + i]! * weight[o * inFeatures + i]!;
      out[r * outFeatures + o] = sum;
    }
  }
  return { shape: [...x.shape.slice(0, -1), outFeatures], data: out };
}

/** ReLU. */
export function relu64(x: Tensor64): Tensor64 {
  return { shape: x.shape, data: x.data.map((v) => Math.max(v, 0)) };
}

/** `nn.LayerNorm` over the trailing values of each of `rows` rows (biased variance, eps 1e-5), elementwise affine. */
export function layerNorm64(x: Tensor64, rows: number, weight: readonly number[], bias: readonly number[], epsilon = 1e-5): Tensor64 {
  const width = x.data.length / rows;
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < width; i++) mean += x.data[r * width + i]!;
    mean /= width;
    let variance = 0;
    for (let i = 0; i < width; i++) variance += (x.data[r * width + i]! - mean) ** 2;
    variance /= width;
    for (let i = 0; i < width; i++) out[r * width + i] = ((x.data[r * width + i]! - mean) / Math.sqrt(variance + epsilon)) * weight[i]! + bias[i]!;
  }
  return { shape: x.shape, data: out };
}

/** What {@link batchNorm64} computed, with the running statistics PyTorch keeps after it. */
export interface BatchNorm64Result {
  /** The normalized input. */
  output: Tensor64;
  /** Running mean after the call (unchanged in eval mode). */
  runningMean: number[];
  /** Running variance after the call (unchanged in eval mode). */
  runningVar: number[];
}

/**
 * `nn.BatchNorm2d` (eps 1e-5, momentum 0.1) on [B, C, H, W]. Eval mode
 * normalizes with the running statistics; train mode with the batch's mean and
 * biased variance over (B, H, W), then moves the running mean and the running
 * variance (unbiased) a tenth of the way to the batch's.
 */
export function batchNorm64(
  x: Tensor64,
  state: { weight: readonly number[]; bias: readonly number[]; runningMean: readonly number[]; runningVar: readonly number[] },
  mode: 'train' | 'eval',
  epsilon = 1e-5,
): BatchNorm64Result {
  const [b, c, h, w] = x.shape as [number, number, number, number];
  const out = new Float64Array(x.data.length);
  const runningMean = [...state.runningMean];
  const runningVar = [...state.runningVar];
  const count = b * h * w;
  for (let channel = 0; channel < c; channel++) {
    const at = (n: number, p: number) => (n * c + channel) * h * w + p;
    let mean = state.runningMean[channel]!;
    let variance = state.runningVar[channel]!;
    if (mode === 'train') {
      mean = 0;
      for (let n = 0; n < b; n++) for (let p = 0; p < h * w; p++) mean += x.data[at(n, p)]!;
      mean /= count;
      let squares = 0;
      for (let n = 0; n < b; n++) for (let p = 0; p < h * w; p++) squares += (x.data[at(n, p)]! - mean) ** 2;
      variance = squares / count;
      runningMean[channel] = 0.9 * state.runningMean[channel]! + 0.1 * mean;
      runningVar[channel] = 0.9 * state.runningVar[channel]! + 0.1 * (squares / (count - 1));
    }
    for (let n = 0; n < b; n++) {
      for (let p = 0; p < h * w; p++)
        out[at(n, p)] = ((x.data[at(n, p)]! - mean) / Math.sqrt(variance + epsilon)) * state.weight[channel]! + state.bias[channel]!;
    }
  }
  return { output: { shape: x.shape, data: out }, runningMean, runningVar };
}

/** A 1x1 convolution [B, Cin, H, W] -> [B, Cout, H, W] with weight [Cout, Cin, 1, 1]. */
export function conv1x1_64(x: Tensor64, weight: readonly number[], bias: readonly number[] | undefined, outChannels: number): Tensor64 {
  const [b, c, h, w] = x.shape as [number, number, number, number];
  const out = new Float64Array(b * outChannels * h * w);
  for (let n = 0; n < b; n++) {
    for (let o = 0; o < outChannels; o++) {
      for (let p = 0; p < h * w; p++) {
        let sum = bias ? bias[o]! : 0;
        for (let i = 0; i < c; i++) sum += weight[o * c + i]! * x.data[(n * c + i) * h * w + p]!;
        out[(n * outChannels + o) * h * w + p] = sum;
      }
    }
  }
  return { shape: [b, outChannels, h, w], data: out };
}

/** erf to about 1e-12 (Taylor series; |z| > 5 gives +-1 within 2e-12). */
export function erf64(z: number): number {
  if (Math.abs(z) > 5) return Math.sign(z);
  let term = z;
  let sum = z;
  for (let n = 1; n < 200; n++) {
    term *= (-z * z) / n;
    const next = term / (2 * n + 1);
    sum += next;
    if (Math.abs(next) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** GELU with the exact erf. */
export function gelu64(x: number): number {
  return 0.5 * x * (1 + erf64(x / Math.SQRT2));
}

/**
 * One pre-norm ViT block (timm's `Block`) on tokens [B, N, D]: x + proj(attention(norm1(x))), then
 * x + fc2(gelu(fc1(norm2(x)))); qkv is one Linear without bias, split into q, k, v and then heads.
 */
export function transformerBlock64(x: Tensor64, weights: ReadonlyMap<string, HostTensor>, prefix: string, heads: number): Tensor64 {
  const [b, n, d] = x.shape as [number, number, number];
  const w = (name: string) => values(weights, `${prefix}${name}`);
  const headDim = d / heads;
  const normed = layerNorm64(x, b * n, w('norm1.weight'), w('norm1.bias'));
  const qkv = linear64(normed, w('attn.qkv.weight'), undefined, 3 * d);
  const attended = new Float64Array(b * n * d);
  for (let s = 0; s < b; s++) {
    for (let head = 0; head < heads; head++) {
      const at = (token: number, part: number, i: number) => qkv.data[(s * n + token) * 3 * d + part * d + head * headDim + i]!;
      for (let query = 0; query < n; query++) {
        const scores = Array.from({ length: n }, (_, key) => {
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += at(query, 0, i) * at(key, 1, i);
          return dot / Math.sqrt(headDim);
        });
        const top = Math.max(...scores);
        const exps = scores.map((v) => Math.exp(v - top));
        const total = exps.reduce((a, v) => a + v, 0);
        for (let i = 0; i < headDim; i++) {
          let sum = 0;
          for (let key = 0; key < n; key++) sum += (exps[key]! / total) * at(key, 2, i);
          attended[(s * n + query) * d + head * headDim + i] = sum;
        }
      }
    }
  }
  const projected = linear64({ shape: [b, n, d], data: attended }, w('attn.proj.weight'), w('attn.proj.bias'), d);
  const middle = { shape: [b, n, d], data: x.data.map((v, i) => v + projected.data[i]!) };
  const hidden = weights.get(`${prefix}mlp.fc1.bias`)!.shape[0]!;
  const mlpIn = layerNorm64(middle, b * n, w('norm2.weight'), w('norm2.bias'));
  const activated = linear64(mlpIn, w('mlp.fc1.weight'), w('mlp.fc1.bias'), hidden);
  const mlpOut = linear64({ shape: activated.shape, data: activated.data.map(gelu64) }, w('mlp.fc2.weight'), w('mlp.fc2.bias'), d);
  return { shape: [b, n, d], data: middle.data.map((v, i) => v + mlpOut.data[i]!) };
}

/** Options of {@link difFormer64}. */
export interface DifFormer64Options {
  /** Timesteps in `t_list` order. */
  timesteps: readonly number[];
  /** Feature keys of one timestep in token order, from the timestep (`(t) => ['t50/block10']`). */
  keys: (timestep: number) => string[];
  /** The block number of a feature key (its `pre_layer.<block>`). */
  blockOf: (key: string) => number;
  /** pre_pool_size. */
  prePoolSize: number;
  /** `layer` or `batch` (BatchNorm2d, in `batchMode`). */
  normType: 'layer' | 'batch';
  /** BatchNorm2d's mode (default eval). */
  batchMode?: 'train' | 'eval';
  /** Attention heads of every ViT block. */
  heads: number;
}

/** What {@link difFormer64} computed. */
export interface DifFormer64Result {
  /** [B, classes]. */
  logits: Tensor64;
  /** Running statistics after the forward pass, by `pre_layer.<block>.1.running_mean|running_var` (batch norm only). */
  buffers: Map<string, number[]>;
}

/**
 * The reference's `AttentionFusion` (the fixtures' README, `attention` and
 * `difformer` cases) for a fusion arc `Use_CLS_Token:True:D,Insert_CLS_Token,
 * Attention:D:H:r:n,Extract_CLS_Token`, from a state dict under the
 * reference's names: per block, adaptive average pooling to
 * min(size, pre_pool_size), LayerNorm over [C, s, s] or BatchNorm2d, a 1x1
 * conv, tokens; per timestep, the blocks' tokens concatenated behind the CLS
 * token, n ViT blocks, the CLS output; the timesteps' outputs concatenated, a
 * Linear. BatchNorm in train mode updates its running statistics once per
 * application, in order.
 */
export function difFormer64(features: ReadonlyMap<string, Tensor64>, weights: ReadonlyMap<string, HostTensor>, options: DifFormer64Options): DifFormer64Result {
  const buffers = new Map<string, number[]>();
  const blockPrefixes = [
    ...new Set(
      [...weights.keys()]
        .map((name) => /^(intra_inter_block_attention\.layers\.\d+\.)norm1\.weight$/.exec(name)?.[1])
        .filter((p): p is string => p !== undefined),
    ),
  ];
  blockPrefixes.sort((a, b) => Number(/\.(\d+)\.$/.exec(a)![1]) - Number(/\.(\d+)\.$/.exec(b)![1]));
  const cls = values(weights, 'intra_inter_block_attention.cls_token');
  const width = cls.length;
  const outputs: number[][] = [];
  let batch = 0;
  for (const t of options.timesteps) {
    const tokenLists: Tensor64[] = [];
    for (const key of options.keys(t)) {
      const x = features.get(key);
      if (!x) throw new Error(`float64 reference: no feature '${key}'`);
      batch = x.shape[0]!;
      const block = options.blockOf(key);
      const pre = `pre_layer.${block}.`;
      const size = Math.min(x.shape[2]!, options.prePoolSize);
      let h = x.shape[2] === size ? x : adaptiveAvgPool64(x, size);
      if (options.normType === 'layer') {
        h = layerNorm64(h, batch, values(weights, `${pre}1.weight`), values(weights, `${pre}1.bias`));
      } else {
        const state = {
          weight: values(weights, `${pre}1.weight`),
          bias: values(weights, `${pre}1.bias`),
          runningMean: buffers.get(`${pre}1.running_mean`) ?? values(weights, `${pre}1.running_mean`),
          runningVar: buffers.get(`${pre}1.running_var`) ?? values(weights, `${pre}1.running_var`),
        };
        const normed = batchNorm64(h, state, options.batchMode ?? 'eval');
        h = normed.output;
        if ((options.batchMode ?? 'eval') === 'train') {
          buffers.set(`${pre}1.running_mean`, normed.runningMean);
          buffers.set(`${pre}1.running_var`, normed.runningVar);
        }
      }
      const conv = conv1x1_64(h, values(weights, `${pre}2.weight`), values(weights, `${pre}2.bias`), width);
      // Rearrange b c h w -> b (h w) c.
      const [, , s] = conv.shape as [number, number, number, number];
      const tokens = new Float64Array(batch * s * s * width);
      for (let n = 0; n < batch; n++)
        for (let c = 0; c < width; c++) for (let p = 0; p < s * s; p++) tokens[(n * s * s + p) * width + c] = conv.data[(n * width + c) * s * s + p]!;
      tokenLists.push({ shape: [batch, s * s, width], data: tokens });
    }
    const count = 1 + tokenLists.reduce((a, tokens) => a + tokens.shape[1]!, 0);
    let x: Tensor64 = { shape: [batch, count, width], data: new Float64Array(batch * count * width) };
    for (let n = 0; n < batch; n++) {
      x.data.set(cls, n * count * width);
      let offset = 1;
      for (const tokens of tokenLists) {
        const m = tokens.shape[1]!;
        x.data.set(tokens.data.subarray(n * m * width, (n + 1) * m * width), (n * count + offset) * width);
        offset += m;
      }
    }
    for (const prefix of blockPrefixes) x = transformerBlock64(x, weights, prefix, options.heads);
    outputs.push(Array.from({ length: batch * width }, (_, i) => x.data[Math.floor(i / width) * count * width + (i % width)]!));
  }
  const joined = new Float64Array(batch * width * options.timesteps.length);
  for (let n = 0; n < batch; n++) outputs.forEach((output, k) => joined.set(output.slice(n * width, (n + 1) * width), (n * outputs.length + k) * width));
  const classes = weights.get('head.bias')!.shape[0]!;
  return {
    logits: linear64({ shape: [batch, joined.length / batch], data: joined }, values(weights, 'head.weight'), values(weights, 'head.bias'), classes),
    buffers,
  };
}
