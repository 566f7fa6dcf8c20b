import { ConfigError, HostTensor, NonFiniteError, ShapeError } from '@diffssl/core';
import { predictionMetrics, type ClassificationMetrics } from '../metrics/classification.js';
import { similarityModel, type ProbeComputeOptions } from './backend.js';

/** Options of the k-nearest-neighbour probe. @public */
export interface KnnOptions extends ProbeComputeOptions {
  /** Neighbours that vote (default 20). */
  k?: number;
  /** Number of classes K. */
  classCount: number;
  /** Queries per similarity chunk (default 1024): bounds memory at chunk x training rows floats. */
  queryChunk?: number;
}

/** L2-normalized float32 copy of [n, D] rows (a zero row stays zero). */
function normalizeRows(features: HostTensor, what: string): Float32Array {
  if (features.rank !== 2) throw new ShapeError(`knn: expected ${what} features [n, D]; found [${features.shape.join(', ')}]`);
  const [n, D] = features.shape as [number, number];
  const dense = features.contiguous();
  const source = dense.data as Float32Array | Float64Array;
  const out = new Float32Array(n * D);
  for (let i = 0; i < n; i++) {
    const offset = dense.offset + i * D;
    let norm = 0;
    for (let d = 0; d < D; d++) {
      const value = source[offset + d]!;
      if (!Number.isFinite(value)) throw new NonFiniteError(`knn: feature ${d} of ${what} row ${i} is ${value}`);
      norm += value * value;
    }
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let d = 0; d < D; d++) out[i * D + d] = source[offset + d]! * scale;
  }
  return out;
}

/**
 * The k nearest neighbours' vote for one query: the class with most votes
 * wins; a tie in votes goes to the tied class with the larger sum of cosine
 * similarities, then to the lower class index. Neighbours are the k largest
 * similarities, equal similarities ranked by lower training index.
 */
function vote(
  similarity: Float32Array,
  offset: number,
  count: number,
  labels: Int32Array,
  k: number,
  classCount: number,
  bestSim: Float64Array,
  bestIndex: Int32Array,
  votes: Int32Array,
  sums: Float64Array,
): number {
  let filled = 0;
  for (let j = 0; j < count; j++) {
    const s = similarity[offset + j]!;
    if (filled === k && !(s > bestSim[k - 1]!)) continue;
    let position = filled === k ? k - 1 : filled;
    while (position > 0 && bestSim[position - 1]! < s) {
      bestSim[position] = bestSim[position - 1]!;
      bestIndex[position] = bestIndex[position - 1]!;
      position--;
    }
    bestSim[position] = s;
    bestIndex[position] = j;
    if (filled < k) filled++;
  }
  votes.fill(0);
  sums.fill(0);
  for (let i = 0; i < filled; i++) {
    const label = labels[bestIndex[i]!]!;
    votes[label]!++;
    sums[label]! += bestSim[i]!;
  }
  let winner = 0;
  for (let c = 1; c < classCount; c++) {
    if (votes[c]! > votes[winner]! || (votes[c] === votes[winner] && sums[c]! > sums[winner]!)) winner = c;
  }
  return winner;
}

/**
 * Classifies queries by their k nearest training rows under cosine similarity
 * (majority vote; ties broken by the larger summed similarity, then the lower
 * class index).
 *
 * @param train - [N, D] training features
 * @param trainLabels - N classes
 * @param queries - [M, D] features to classify
 * @param options - k, classes, backend
 * @returns M predicted classes
 * @throws {@link @diffssl/core!ConfigError} for k outside 1..N or a label outside the classes; {@link @diffssl/core!ShapeError} for mismatched shapes; {@link @diffssl/core!NonFiniteError} for NaN features
 * @example
 * ```ts
 * const predictions = await knnClassify(trainFeatures, trainLabels, testFeatures, { k: 20, classCount: 10 });
 * ```
 * @public
 */
export async function knnClassify(train: HostTensor, trainLabels: ArrayLike<number>, queries: HostTensor, options: KnnOptions): Promise<Int32Array> {
  const k = options.k ?? 20;
  const { classCount } = options;
  const backend = options.backend ?? 'onnx';
  if (backend !== 'onnx' && backend !== 'typescript') throw new ConfigError(`knn: backend must be 'onnx' or 'typescript'; found '${String(backend)}'`);
  if (!Number.isSafeInteger(classCount) || classCount < 1) throw new ConfigError(`knn: classCount must be a positive integer; found ${classCount}`);
  const trainRows = normalizeRows(train, 'training');
  const queryRows = normalizeRows(queries, 'query');
  const [N, D] = train.shape as [number, number];
  const M = queries.shape[0]!;
  if (queries.shape[1] !== D) throw new ShapeError(`knn: expected query features [M, ${D}] like the training features; found [${queries.shape.join(', ')}]`);
  if (trainLabels.length !== N) throw new ShapeError(`knn: expected ${N} training labels (one per row); found ${trainLabels.length}`);
  if (!Number.isSafeInteger(k) || k < 1 || k > N) throw new ConfigError(`knn: k must be an integer in 1..${N} (the training rows); found ${k}`);
  const labels = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const label = trainLabels[i]!;
    if (!Number.isInteger(label) || label < 0 || label >= classCount)
      throw new ConfigError(`knn: label ${label} of training row ${i} is outside the classes 0..${classCount - 1}`);
    labels[i] = label;
  }
  const chunk = Math.max(1, options.queryChunk ?? 1024);
  const predictions = new Int32Array(M);
  const bestSim = new Float64Array(k);
  const bestIndex = new Int32Array(k);
  const votes = new Int32Array(classCount);
  const sums = new Float64Array(classCount);
  const model = backend === 'onnx' ? similarityModel(D, options.runner) : undefined;
  try {
    let trainTransposed: HostTensor<'float32'> | undefined;
    if (model) {
      const t = new Float32Array(D * N);
      for (let i = 0; i < N; i++) for (let d = 0; d < D; d++) t[d * N + i] = trainRows[i * D + d]!;
      trainTransposed = HostTensor.from('float32', [D, N], t);
    }
    for (let start = 0; start < M; start += chunk) {
      const rows = Math.min(chunk, M - start);
      let similarity: Float32Array;
      if (model) {
        const q = HostTensor.from('float32', [rows, D], queryRows.subarray(start * D, (start + rows) * D));
        similarity = (await model.run({ q, t: trainTransposed! })).similarity!.data as Float32Array;
      } else {
        similarity = new Float32Array(rows * N);
        for (let i = 0; i < rows; i++) {
          const q = (start + i) * D;
          for (let j = 0; j < N; j++) {
            let dot = 0;
            for (let d = 0; d < D; d++) dot += queryRows[q + d]! * trainRows[j * D + d]!;
            similarity[i * N + j] = dot;
          }
        }
      }
      for (let i = 0; i < rows; i++) predictions[start + i] = vote(similarity, i * N, N, labels, k, classCount, bestSim, bestIndex, votes, sums);
    }
  } finally {
    await model?.release();
  }
  return predictions;
}

/** Input of {@link knnProbe}. @public */
export interface KnnProbeInput extends KnnOptions {
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
 * Scores test features by a k-nearest-neighbour vote over training features.
 *
 * @param input - features, labels and kNN options
 * @returns metrics from predictions (top-1, per-class accuracy, confusion matrix) and the predictions
 * @throws as {@link knnClassify}
 * @public
 */
export async function knnProbe(input: KnnProbeInput): Promise<{
  /** Top-1, per-class accuracy and confusion matrix on the test set. */
  metrics: ClassificationMetrics;
  /** The predicted class of each test row. */
  predictions: Int32Array;
}> {
  const predictions = await knnClassify(input.train, input.trainLabels, input.test, input);
  return { metrics: predictionMetrics(predictions, input.testLabels, input.classCount), predictions };
}
