import { ConfigError, HostTensor, NonFiniteError, ShapeError } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { classificationMetrics, MetricsAccumulator, predictionMetrics } from './index.js';

// Four images, three classes. Predictions (argmax, ties to the lower index): 0, 2, 0, 1.
const logits = HostTensor.from('float32', [4, 3], [2, 1, 0, 0, 0, 5, 1, 1, 0, 0, 3, 1]);
const labels = [0, 1, 1, 1];
// log(sum(exp(row))) - row[label], computed by hand (Python math, float64).
const crossEntropies = [0.40760596444438013, 5.013385901721449, 0.861994804058251, 0.16984601955628564];

describe('classification metrics', () => {
  it('gives top-1, per-class accuracy, the confusion matrix and the mean cross-entropy of hand-worked logits', () => {
    const metrics = classificationMetrics(logits, labels);
    expect(metrics.count).toBe(4);
    expect(metrics.top1).toBe(50);
    expect(metrics.confusionMatrix).toEqual([
      [1, 0, 0],
      [1, 1, 1],
      [0, 0, 0],
    ]);
    expect(metrics.perClassAccuracy[0]).toBe(100);
    expect(metrics.perClassAccuracy[1]).toBeCloseTo(100 / 3, 12);
    expect(metrics.perClassAccuracy[2]).toBeNull();
    expect(metrics.meanCrossEntropy).toBeCloseTo(crossEntropies.reduce((a, b) => a + b) / 4, 12);
    expect(metrics.top5).toBe(100); // three classes: every label is in the top 3
  });

  it('counts top-5 with ties ranked by class index', () => {
    const a = [0.1, 0.7, 0.3, 0.9, 0.5, 0.2, 0.6];
    const ties = [1, 1, 1, 1, 1, 1, 1];
    const rows = [a, a, a, ties, ties];
    // label 4 (0.5): 3 ahead -> in; label 5 (0.2): 5 ahead -> out; label 0: 6 ahead -> out;
    // ties, label 4: classes 0..3 ahead -> in; ties, label 5: 5 ahead -> out.
    const metrics = classificationMetrics(HostTensor.from('float64', [5, 7], rows.flat()), [4, 5, 0, 4, 5]);
    expect(metrics.top5).toBe(40);
    expect(metrics.top1).toBe(0);
    expect(metrics.confusionMatrix[4]).toEqual([1, 0, 0, 1, 0, 0, 0]);
  });

  it('accumulates batches to the same totals as the hand-worked example', () => {
    const accumulator = new MetricsAccumulator(3);
    accumulator.add(logits.slice([0], [1]), labels.slice(0, 1));
    accumulator.add(logits.slice([1], [4]), labels.slice(1));
    const metrics = accumulator.result();
    expect(metrics.top1).toBe(50);
    expect(metrics.confusionMatrix).toEqual([
      [1, 0, 0],
      [1, 1, 1],
      [0, 0, 0],
    ]);
    expect(metrics.meanCrossEntropy).toBeCloseTo(1.6132081724450917, 12);
  });

  it('scores predicted classes without top-5 or loss', () => {
    const metrics = predictionMetrics([0, 2, 2, 1, 1], [0, 2, 1, 1, 0], 3);
    expect(metrics.top1).toBe(60);
    expect(metrics.confusionMatrix).toEqual([
      [1, 1, 0],
      [0, 1, 1],
      [0, 0, 1],
    ]);
    expect(metrics.perClassAccuracy).toEqual([50, 50, 100]);
    expect(metrics.top5).toBeNull();
    expect(metrics.meanCrossEntropy).toBeNull();
  });

  it('says which label, logit or shape is wrong', () => {
    expect(() => classificationMetrics(logits, [0, 1, 3, 1])).toThrow(new ConfigError('metrics: label 3 of image 2 is outside the classes 0..2'));
    expect(() => classificationMetrics(HostTensor.from('float32', [1, 2], [0, Number.NaN]), [0])).toThrow(NonFiniteError);
    expect(() => classificationMetrics(logits, [0, 1])).toThrow(ShapeError);
    expect(() => predictionMetrics([0, 5], [0, 1], 3)).toThrow(/prediction 5 of image 1 is outside/);
    expect(() => new MetricsAccumulator(2).result()).toThrow(/no image was scored/);
  });
});
