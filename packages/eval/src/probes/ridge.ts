import { ConfigError, HostTensor, NonFiniteError, ShapeError } from '@diffssl/core';
import { classificationMetrics, type ClassificationMetrics } from '../metrics/classification.js';
import { gramModel, type LazyModel, type ProbeComputeOptions } from './backend.js';

/** Options of the ridge probe. @public */
export interface RidgeOptions extends ProbeComputeOptions {
  /** Number of classes K. */
  classCount: number;
  /**
   * The ridge penalty λ (default 1e-3). With `lambdaScale: 'relative'` (the
   * default) the penalty added to the diagonal is λ·trace(XcᵀXc)/D, the mean
   * diagonal of the centered Gram matrix (N times the mean feature variance),
   * so one λ suits blocks of very different feature scales.
   */
  lambda?: number;
  /** `relative` (default) or `absolute`. */
  lambdaScale?: 'relative' | 'absolute';
  /** Rows per matrix-product chunk (default 4096): bounds memory for large N. */
  chunkRows?: number;
}

/**
 * A fitted linear classifier: logits = x·W + b.
 *
 * @public
 */
export class RidgeModel {
  /** @internal */
  constructor(
    /** W, row-major [D, K]. */
    readonly weights: Float64Array,
    /** b [K]. */
    readonly bias: Float64Array,
    /** D. */
    readonly featureCount: number,
    /** K. */
    readonly classCount: number,
    /** The absolute penalty that was used. */
    readonly penalty: number,
  ) {}

  /**
   * The logits of some feature vectors.
   *
   * @param features - [n, D]
   * @returns float64 [n, K]
   * @throws {@link @diffssl/core!ShapeError} for another D
   */
  predict(features: HostTensor): HostTensor<'float64'> {
    const D = this.featureCount;
    const K = this.classCount;
    if (features.rank !== 2 || features.shape[1] !== D) throw new ShapeError(`ridge: expected features [n, ${D}]; found [${features.shape.join(', ')}]`);
    const n = features.shape[0]!;
    const dense = features.contiguous();
    const x = dense.data as Float32Array | Float64Array;
    const out = new Float64Array(n * K);
    for (let i = 0; i < n; i++) {
      const row = out.subarray(i * K, (i + 1) * K);
      row.set(this.bias);
      const offset = dense.offset + i * D;
      for (let d = 0; d < D; d++) {
        const value = x[offset + d]!;
        if (value === 0) continue;
        const w = d * K;
        for (let k = 0; k < K; k++) row[k]! += value * this.weights[w + k]!;
      }
    }
    return HostTensor.from('float64', [n, K], out);
  }
}

/**
 * Closed-form ridge regression onto one-hot targets, accumulated batch by
 * batch: minimizes ‖X·W + 1·bᵀ − Y‖² + λ‖W‖² with the bias unregularized.
 * It keeps XᵀX, Xᵀ1, XᵀY (float64) and the class counts; {@link RidgeAccumulator.fit}
 * centers them (which is exactly what leaving the bias unregularized means),
 * solves (XcᵀXc + λI)·W = XcᵀYc by Cholesky in float64 and sets b = ȳ − Wᵀx̄.
 *
 * @example
 * ```ts
 * const ridge = new RidgeAccumulator(1024, { classCount: 10 });
 * await ridge.add(trainFeatures, trainLabels);
 * const model = await ridge.fit();
 * const logits = model.predict(testFeatures);
 * ```
 * @public
 */
export class RidgeAccumulator {
  private readonly gram: Float64Array;
  private readonly cross: Float64Array;
  private readonly sums: Float64Array;
  private readonly classCounts: Float64Array;
  private count = 0;
  private readonly model: LazyModel | undefined;
  private readonly classCount: number;

  /**
   * @param featureCount - D
   * @param options - classes, λ, backend
   * @throws {@link @diffssl/core!ConfigError} for bad counts, λ or backend
   */
  constructor(
    readonly featureCount: number,
    private readonly options: RidgeOptions,
  ) {
    const { classCount } = options;
    if (!Number.isSafeInteger(featureCount) || featureCount < 1) throw new ConfigError(`ridge: featureCount must be a positive integer; found ${featureCount}`);
    if (!Number.isSafeInteger(classCount) || classCount < 1) throw new ConfigError(`ridge: classCount must be a positive integer; found ${classCount}`);
    const lambda = options.lambda ?? 1e-3;
    if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new ConfigError(`ridge: lambda must be a finite number >= 0; found ${lambda}`);
    const backend = options.backend ?? 'onnx';
    if (backend !== 'onnx' && backend !== 'typescript') throw new ConfigError(`ridge: backend must be 'onnx' or 'typescript'; found '${String(backend)}'`);
    this.classCount = classCount;
    this.gram = new Float64Array(featureCount * featureCount);
    this.cross = new Float64Array(featureCount * classCount);
    this.sums = new Float64Array(featureCount);
    this.classCounts = new Float64Array(classCount);
    this.model = backend === 'onnx' ? gramModel(featureCount, classCount, options.runner) : undefined;
  }

  /**
   * Adds training rows.
   *
   * @param features - [n, D]
   * @param labels - n classes
   * @throws {@link @diffssl/core!ShapeError} for a wrong shape; {@link @diffssl/core!ConfigError} for a label outside 0..K-1; {@link @diffssl/core!NonFiniteError} for NaN features
   */
  async add(features: HostTensor, labels: ArrayLike<number>): Promise<void> {
    const D = this.featureCount;
    const K = this.classCount;
    if (features.rank !== 2 || features.shape[1] !== D || features.shape[0] !== labels.length) {
      throw new ShapeError(`ridge: expected features [${labels.length}, ${D}] (one row per label); found [${features.shape.join(', ')}]`);
    }
    const n = labels.length;
    const dense = features.contiguous();
    const source = dense.data as Float32Array | Float64Array;
    const chunkRows = this.options.chunkRows ?? 4096;
    for (let start = 0; start < n; start += chunkRows) {
      const rows = Math.min(chunkRows, n - start);
      const x = new Float64Array(rows * D);
      const y = new Float64Array(rows * K);
      for (let i = 0; i < rows; i++) {
        const label = labels[start + i]!;
        if (!Number.isInteger(label) || label < 0 || label >= K)
          throw new ConfigError(`ridge: label ${label} of row ${this.count + start + i} is outside the classes 0..${K - 1}`);
        y[i * K + label] = 1;
        this.classCounts[label]!++;
        const offset = dense.offset + (start + i) * D;
        for (let d = 0; d < D; d++) {
          const value = source[offset + d]!;
          if (!Number.isFinite(value)) throw new NonFiniteError(`ridge: feature ${d} of row ${this.count + start + i} is ${value}`);
          x[i * D + d] = value;
          this.sums[d]! += value;
        }
      }
      if (this.model) {
        const result = await this.model.run({ x: HostTensor.from('float64', [rows, D], x), y: HostTensor.from('float64', [rows, K], y) });
        const gram = result.gram!.data as Float64Array;
        const cross = result.cross!.data as Float64Array;
        for (let i = 0; i < gram.length; i++) this.gram[i]! += gram[i]!;
        for (let i = 0; i < cross.length; i++) this.cross[i]! += cross[i]!;
      } else {
        accumulateGram(x, rows, D, this.gram);
        for (let i = 0; i < rows; i++) {
          for (let d = 0; d < D; d++) {
            const value = x[i * D + d]!;
            for (let k = 0; k < K; k++) this.cross[d * K + k]! += value * y[i * K + k]!;
          }
        }
      }
    }
    this.count += n;
  }

  /**
   * Solves for W and b and releases the session.
   *
   * @returns the model
   * @throws {@link @diffssl/core!ConfigError} when no row was added, or when XcᵀXc + λI is not positive definite (λ = 0 with collinear features: raise λ)
   */
  async fit(): Promise<RidgeModel> {
    await this.release();
    const D = this.featureCount;
    const K = this.classCount;
    const N = this.count;
    if (N === 0) throw new ConfigError('ridge: no training row was added');
    const mean = this.sums.map((s) => s / N);
    const classMean = this.classCounts.map((c) => c / N);
    // Centered normal equations: A = XᵀX − N·x̄x̄ᵀ, R = XᵀY − N·x̄ȳᵀ.
    const a = new Float64Array(D * D);
    for (let i = 0; i < D; i++) {
      for (let j = 0; j <= i; j++) {
        const value = this.gram[i * D + j]! - N * mean[i]! * mean[j]!;
        a[i * D + j] = value;
        a[j * D + i] = value;
      }
    }
    let trace = 0;
    for (let i = 0; i < D; i++) trace += a[i * D + i]!;
    const lambda = this.options.lambda ?? 1e-3;
    const penalty = (this.options.lambdaScale ?? 'relative') === 'relative' ? lambda * (trace > 0 ? trace / D : 1) : lambda;
    for (let i = 0; i < D; i++) a[i * D + i]! += penalty;
    const r = new Float64Array(D * K);
    for (let d = 0; d < D; d++) for (let k = 0; k < K; k++) r[d * K + k] = this.cross[d * K + k]! - N * mean[d]! * classMean[k]!;
    choleskyInPlace(a, D);
    const weights = choleskySolve(a, D, r, K);
    const bias = new Float64Array(K);
    for (let k = 0; k < K; k++) {
      let value = classMean[k]!;
      for (let d = 0; d < D; d++) value -= weights[d * K + k]! * mean[d]!;
      bias[k] = value;
    }
    return new RidgeModel(weights, bias, D, K, penalty);
  }

  /** Releases the ONNX session (also done by {@link RidgeAccumulator.fit}). */
  async release(): Promise<void> {
    await this.model?.release();
  }
}

/** gram += xᵀx for x [rows, D] (the lower triangle is filled from the upper). */
function accumulateGram(x: Float64Array, rows: number, D: number, gram: Float64Array): void {
  const upper = new Float64Array(D * D);
  for (let i = 0; i < rows; i++) {
    const row = x.subarray(i * D, (i + 1) * D);
    for (let p = 0; p < D; p++) {
      const value = row[p]!;
      if (value === 0) continue;
      const offset = p * D;
      for (let q = p; q < D; q++) upper[offset + q]! += value * row[q]!;
    }
  }
  for (let p = 0; p < D; p++) {
    for (let q = p; q < D; q++) {
      gram[p * D + q]! += upper[p * D + q]!;
      if (q !== p) gram[q * D + p]! += upper[p * D + q]!;
    }
  }
}

/**
 * Cholesky factorization A = L·Lᵀ in place (L in the lower triangle, row-major).
 *
 * @throws {@link @diffssl/core!ConfigError} when A is not (numerically) positive definite
 */
export function choleskyInPlace(a: Float64Array, n: number): void {
  // A pivot below n·ε·max|Aᵢᵢ| is rounding noise: the matrix is numerically singular.
  let largest = 0;
  for (let i = 0; i < n; i++) largest = Math.max(largest, Math.abs(a[i * n + i]!));
  const tolerance = n * Number.EPSILON * largest;
  for (let j = 0; j < n; j++) {
    const rowJ = j * n;
    let diagonal = a[rowJ + j]!;
    for (let k = 0; k < j; k++) diagonal -= a[rowJ + k]! * a[rowJ + k]!;
    if (!(diagonal > tolerance)) throw new ConfigError(`ridge: XᵀX + λI is not positive definite (pivot ${j} is ${diagonal}); use a larger lambda`);
    const root = Math.sqrt(diagonal);
    a[rowJ + j] = root;
    for (let i = j + 1; i < n; i++) {
      const rowI = i * n;
      let value = a[rowI + j]!;
      for (let k = 0; k < j; k++) value -= a[rowI + k]! * a[rowJ + k]!;
      a[rowI + j] = value / root;
    }
  }
}

/** Solves L·Lᵀ·X = B for B [n, m] (row-major) with the factor from {@link choleskyInPlace}. */
export function choleskySolve(l: Float64Array, n: number, b: Float64Array, m: number): Float64Array {
  const x = Float64Array.from(b);
  // Forward: L·Z = B.
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < i; k++) {
      const factor = l[i * n + k]!;
      if (factor === 0) continue;
      for (let c = 0; c < m; c++) x[i * m + c]! -= factor * x[k * m + c]!;
    }
    const diagonal = l[i * n + i]!;
    for (let c = 0; c < m; c++) x[i * m + c]! /= diagonal;
  }
  // Backward: Lᵀ·X = Z.
  for (let i = n - 1; i >= 0; i--) {
    for (let k = i + 1; k < n; k++) {
      const factor = l[k * n + i]!;
      if (factor === 0) continue;
      for (let c = 0; c < m; c++) x[i * m + c]! -= factor * x[k * m + c]!;
    }
    const diagonal = l[i * n + i]!;
    for (let c = 0; c < m; c++) x[i * m + c]! /= diagonal;
  }
  return x;
}

/** Input of {@link ridgeProbe}. @public */
export interface RidgeProbeInput extends RidgeOptions {
  /** [N, D] pooled training features. */
  train: HostTensor;
  /** N training labels, one class index per row of `train`. */
  trainLabels: ArrayLike<number>;
  /** [M, D] pooled test features. */
  test: HostTensor;
  /** M test labels, one class index per row of `test`. */
  testLabels: ArrayLike<number>;
}

/**
 * Fits a ridge classifier on training features and scores it on test features.
 *
 * @param input - features, labels and ridge options
 * @returns the metrics on the test set and the model
 * @throws as {@link RidgeAccumulator}
 * @public
 */
export async function ridgeProbe(input: RidgeProbeInput): Promise<{
  /** The metrics on the test set. */
  metrics: ClassificationMetrics;
  /** The fitted ridge classifier. */
  model: RidgeModel;
}> {
  const ridge = new RidgeAccumulator(input.train.shape[1] ?? 0, input);
  try {
    await ridge.add(input.train, input.trainLabels);
    const model = await ridge.fit();
    return { metrics: classificationMetrics(model.predict(input.test), input.testLabels), model };
  } finally {
    await ridge.release();
  }
}
