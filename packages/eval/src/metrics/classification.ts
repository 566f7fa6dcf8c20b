import { ConfigError, NonFiniteError, ShapeError, type HostTensor } from '@diffssl/core';

/**
 * Classification metrics of a set of predictions. Accuracies are percentages
 * of the images scored.
 *
 * @public
 */
export interface ClassificationMetrics {
  /** Images scored. */
  count: number;
  /** Top-1 accuracy, percent. */
  top1: number;
  /** Top-5 accuracy, percent (top-K when there are K < 5 classes); null for metrics from predictions alone. */
  top5: number | null;
  /** Accuracy of each class, percent; null for a class with no image. */
  perClassAccuracy: Array<number | null>;
  /** counts[true class][predicted class]. */
  confusionMatrix: number[][];
  /** Mean cross-entropy (natural log) of the softmax of the logits; null for metrics from predictions alone. */
  meanCrossEntropy: number | null;
}

function checkLabel(label: number, classCount: number, row: number): void {
  if (!Number.isInteger(label) || label < 0 || label >= classCount)
    throw new ConfigError(`metrics: label ${label} of image ${row} is outside the classes 0..${classCount - 1}`);
}

/**
 * Accumulates metrics batch by batch, so an evaluation never holds all logits.
 * Ties between equal logits rank the lower class index first (as `argmax`
 * does): the true class is in the top k when fewer than k classes have a
 * greater logit or an equal logit and a lower index.
 *
 * @example
 * ```ts
 * const metrics = new MetricsAccumulator(10);
 * for (const { logits, labels } of batches) metrics.add(logits, labels);
 * const { top1, top5, confusionMatrix } = metrics.result();
 * ```
 * @public
 */
export class MetricsAccumulator {
  private readonly confusion: number[][];
  private count = 0;
  private top5Hits = 0;
  private crossEntropySum = 0;
  private logitsSeen = false;
  private predictionsSeen = false;

  /**
   * @param classCount - number of classes K
   * @throws {@link @diffssl/core!ConfigError} for K < 1
   */
  constructor(readonly classCount: number) {
    if (!Number.isSafeInteger(classCount) || classCount < 1) throw new ConfigError(`metrics: classCount must be a positive integer; found ${classCount}`);
    this.confusion = Array.from({ length: classCount }, () => new Array<number>(classCount).fill(0));
  }

  /**
   * Adds a batch of logits.
   *
   * @param logits - [n, K] (any float dtype)
   * @param labels - n true classes
   * @throws {@link @diffssl/core!ShapeError} for a wrong shape; {@link @diffssl/core!ConfigError} for a label outside 0..K-1; {@link @diffssl/core!NonFiniteError} for NaN or infinite logits
   */
  add(logits: HostTensor, labels: ArrayLike<number>): void {
    const K = this.classCount;
    if (logits.rank !== 2 || logits.shape[1] !== K || logits.shape[0] !== labels.length) {
      throw new ShapeError(`metrics: expected logits [${labels.length}, ${K}]; found [${logits.shape.join(', ')}]`);
    }
    const values = logits.toArray();
    const topK = Math.min(5, K);
    for (let row = 0; row < labels.length; row++) {
      const label = labels[row]!;
      checkLabel(label, K, this.count + row);
      const offset = row * K;
      const own = values[offset + label]!;
      let best = 0;
      let ahead = 0;
      let maximum = -Infinity;
      for (let c = 0; c < K; c++) {
        const value = values[offset + c]!;
        if (!Number.isFinite(value)) throw new NonFiniteError(`metrics: logit ${c} of image ${this.count + row} is ${value}`);
        if (value > values[offset + best]!) best = c;
        if (value > own || (value === own && c < label)) ahead++;
        if (value > maximum) maximum = value;
      }
      let sum = 0;
      for (let c = 0; c < K; c++) sum += Math.exp(values[offset + c]! - maximum);
      this.crossEntropySum += maximum + Math.log(sum) - own;
      if (ahead < topK) this.top5Hits++;
      this.confusion[label]![best]!++;
    }
    this.count += labels.length;
    this.logitsSeen = true;
  }

  /**
   * Adds a batch of predicted classes (no top-5 or cross-entropy then).
   *
   * @param predictions - n predicted classes
   * @param labels - n true classes
   * @throws {@link @diffssl/core!ShapeError} for different lengths; {@link @diffssl/core!ConfigError} for a class outside 0..K-1
   */
  addPredictions(predictions: ArrayLike<number>, labels: ArrayLike<number>): void {
    if (predictions.length !== labels.length)
      throw new ShapeError(`metrics: expected ${labels.length} predictions (one per label); found ${predictions.length}`);
    for (let row = 0; row < labels.length; row++) {
      checkLabel(labels[row]!, this.classCount, this.count + row);
      const predicted = predictions[row]!;
      if (!Number.isInteger(predicted) || predicted < 0 || predicted >= this.classCount)
        throw new ConfigError(`metrics: prediction ${predicted} of image ${this.count + row} is outside the classes 0..${this.classCount - 1}`);
      this.confusion[labels[row]!]![predicted]!++;
    }
    this.count += labels.length;
    this.predictionsSeen = true;
  }

  /**
   * The metrics of everything added.
   *
   * @throws {@link @diffssl/core!ConfigError} when nothing was added
   */
  result(): ClassificationMetrics {
    if (this.count === 0) throw new ConfigError('metrics: no image was scored');
    const correct = this.confusion.reduce((sum, row, c) => sum + row[c]!, 0);
    const onlyLogits = this.logitsSeen && !this.predictionsSeen;
    return {
      count: this.count,
      top1: (100 * correct) / this.count,
      top5: onlyLogits ? (100 * this.top5Hits) / this.count : null,
      perClassAccuracy: this.confusion.map((row, c) => {
        const total = row.reduce((a, b) => a + b, 0);
        return total === 0 ? null : (100 * row[c]!) / total;
      }),
      confusionMatrix: this.confusion.map((row) => [...row]),
      meanCrossEntropy: onlyLogits ? this.crossEntropySum / this.count : null,
    };
  }
}

/**
 * Metrics of logits against labels: top-1, top-5, per-class accuracy, the
 * confusion matrix and the mean cross-entropy.
 *
 * @param logits - [N, K]
 * @param labels - N true classes
 * @returns the metrics
 * @throws as {@link MetricsAccumulator.add}
 * @example
 * ```ts
 * classificationMetrics(HostTensor.from('float32', [2, 3], [2, 1, 0, 0, 0, 5]), [0, 1]).top1; // 50
 * ```
 * @public
 */
export function classificationMetrics(logits: HostTensor, labels: ArrayLike<number>): ClassificationMetrics {
  if (logits.rank !== 2) throw new ShapeError(`metrics: expected logits [N, K]; found [${logits.shape.join(', ')}]`);
  const accumulator = new MetricsAccumulator(logits.shape[1] ?? 0);
  accumulator.add(logits, labels);
  return accumulator.result();
}

/**
 * Metrics of predicted classes against labels (top-1, per-class accuracy and
 * the confusion matrix; `top5` and `meanCrossEntropy` are null).
 *
 * @param predictions - N predicted classes
 * @param labels - N true classes
 * @param classCount - K
 * @returns the metrics
 * @throws as {@link MetricsAccumulator.addPredictions}
 * @public
 */
export function predictionMetrics(predictions: ArrayLike<number>, labels: ArrayLike<number>, classCount: number): ClassificationMetrics {
  const accumulator = new MetricsAccumulator(classCount);
  accumulator.addPredictions(predictions, labels);
  return accumulator.result();
}
