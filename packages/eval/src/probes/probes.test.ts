import { ConfigError, HostTensor, ShapeError } from '@diffssl/core';
import { randomTensor } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { knnClassify, knnProbe, poolFeatures, RidgeAccumulator, ridgeProbe, type ProbeBackend } from './index.js';

const backends: ProbeBackend[] = ['typescript', 'onnx'];
const rows = (values: number[][]) => HostTensor.from('float32', [values.length, values[0]!.length], values.flat());

describe('poolFeatures', () => {
  it('averages PyTorch adaptive_avg_pool2d windows and flattens [C, s, s]', () => {
    const plane = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const features = HostTensor.from('float32', [1, 2, 3, 3], [...plane, ...plane.map((v) => 10 * v)]);
    // Windows of 3 -> 2: rows/columns 0..1 and 1..2 (they overlap).
    expect(poolFeatures(features, 2).toArray()).toEqual([3, 4, 6, 7, 30, 40, 60, 70]);
    expect(poolFeatures(features).toArray()).toEqual([5, 50]);
    expect(poolFeatures(features, 3).shape).toEqual([1, 18]);
    expect(() => poolFeatures(features, 4)).toThrow(ConfigError);
    expect(() => poolFeatures(features.reshape([2, 9]))).toThrow(ShapeError);
  });
});

describe('k-nearest-neighbour probe (cosine)', () => {
  for (const backend of backends) {
    it(`votes by majority among the k most similar rows, by scale-free cosine (${backend})`, async () => {
      const train = rows([
        [1, 0],
        [0.6, 0.8],
        [0.8, -0.6],
        [-1, 0],
      ]);
      const labels = [0, 1, 1, 0];
      // Similarities to [1, 0]: 1, 0.6, 0.8, -1. k=1: the nearest is class 0; k=3: two of three are class 1.
      expect([
        ...(await knnClassify(
          train,
          labels,
          rows([
            [1, 0],
            [5, 0],
          ]),
          { k: 1, classCount: 2, backend },
        )),
      ]).toEqual([0, 0]);
      expect([
        ...(await knnClassify(
          train,
          labels,
          rows([
            [1, 0],
            [5, 0],
          ]),
          { k: 3, classCount: 2, backend },
        )),
      ]).toEqual([1, 1]);
    });

    it(`breaks a tie in votes by summed similarity, then by lower class index (${backend})`, async () => {
      const train = rows([
        [1, 0],
        [0, 1],
        [-1, 0],
      ]);
      // [1, 2]: similarities 0.447 (class 0), 0.894 (class 1); one vote each, class 1 is more similar.
      expect([
        ...(await knnClassify(
          train,
          [0, 1, 2],
          rows([
            [1, 2],
            [2, 1],
          ]),
          { k: 2, classCount: 3, backend },
        )),
      ]).toEqual([1, 0]);
      // [1, 1]: equal similarity to both; votes and sums tie, so the lower class (0) wins.
      expect([...(await knnClassify(train, [1, 0, 2], rows([[1, 1]]), { k: 2, classCount: 3, backend }))]).toEqual([0]);
      // k = 1 and equal similarities: the lower training index is the neighbour (class 1).
      expect([...(await knnClassify(train, [1, 0, 2], rows([[1, 1]]), { k: 1, classCount: 3, backend }))]).toEqual([1]);
    });

    it(`agrees with a brute-force float64 sort on random data (${backend})`, async () => {
      const train = randomTensor([120, 6], 11);
      const queries = randomTensor([40, 6], 12);
      const labels = Array.from({ length: 120 }, (_, i) => (i * 7) % 4);
      const k = 5;
      const t = train.toArray();
      const q = queries.toArray();
      const want: number[] = [];
      for (let i = 0; i < 40; i++) {
        const qi = q.slice(i * 6, i * 6 + 6);
        const cos = labels.map((_, j) => {
          const tj = t.slice(j * 6, j * 6 + 6);
          const dot = qi.reduce((s, v, d) => s + v * tj[d]!, 0);
          return dot / Math.hypot(...qi) / Math.hypot(...tj);
        });
        const nearest = cos
          .map((c, j) => [c, j] as const)
          .sort((a, b) => b[0] - a[0] || a[1] - b[1])
          .slice(0, k);
        const votes = [0, 0, 0, 0];
        const sums = [0, 0, 0, 0];
        for (const [c, j] of nearest) {
          votes[labels[j]!]!++;
          sums[labels[j]!]! += c;
        }
        want.push([0, 1, 2, 3].reduce((best, c) => (votes[c]! > votes[best]! || (votes[c] === votes[best] && sums[c]! > sums[best]!) ? c : best), 0));
      }
      const got = await knnClassify(train, labels, queries, { k, classCount: 4, backend, queryChunk: 16 });
      expect([...got]).toEqual(want);
    });
  }

  it('reports accuracy and says what is wrong with bad input', async () => {
    const train = rows([
      [1, 0],
      [0, 1],
    ]);
    const { metrics, predictions } = await knnProbe({
      train,
      trainLabels: [0, 1],
      test: rows([
        [2, 0.1],
        [0.1, 2],
        [1, 0.2],
      ]),
      testLabels: [0, 1, 1],
      k: 1,
      classCount: 2,
    });
    expect([...predictions]).toEqual([0, 1, 0]);
    expect(metrics.top1).toBeCloseTo(200 / 3, 10);
    expect(metrics.confusionMatrix).toEqual([
      [1, 0],
      [1, 1],
    ]);
    await expect(knnClassify(train, [0, 1], rows([[1, 0]]), { k: 3, classCount: 2 })).rejects.toThrow(/k must be an integer in 1\.\.2/);
    await expect(knnClassify(train, [0, 2], rows([[1, 0]]), { k: 1, classCount: 2 })).rejects.toThrow(/label 2 of training row 1 is outside/);
    await expect(knnClassify(train, [0, 1], rows([[1, 0, 0]]), { k: 1, classCount: 2 })).rejects.toThrow(ShapeError);
  });
});

/** Ridge with an unregularized bias, solved independently: Gaussian elimination with partial pivoting on the augmented normal equations ([X 1]ᵀ[X 1] + diag(λ,…,λ,0))θ = [X 1]ᵀY. */
function ridgeByGaussianElimination(
  x: number[],
  n: number,
  d: number,
  labels: number[],
  classes: number,
  lambda: number,
): { weights: number[]; bias: number[] } {
  const p = d + 1;
  const row = (i: number, j: number) => (j < d ? x[i * d + j]! : 1);
  const a = Array.from({ length: p }, (_, r) =>
    Array.from({ length: p + classes }, (_, c) => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += row(i, r) * (c < p ? row(i, c) : labels[i] === c - p ? 1 : 0);
      return sum + (c === r && r < d ? lambda : 0);
    }),
  );
  for (let col = 0; col < p; col++) {
    let pivot = col;
    for (let r = col + 1; r < p; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    for (let r = 0; r < p; r++) {
      if (r === col) continue;
      const factor = a[r]![col]! / a[col]![col]!;
      for (let c = col; c < p + classes; c++) a[r]![c]! -= factor * a[col]![c]!;
    }
  }
  const theta = a.map((r, i) => r.slice(p).map((v) => v / r[i]!));
  return { weights: theta.slice(0, d).flat(), bias: theta[d]! };
}

function expectAllClose(actual: ArrayLike<number>, expected: number[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  const scale = Math.max(...expected.map(Math.abs));
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!), `element ${i}`).toBeLessThanOrEqual(tolerance * scale);
}

describe('ridge-regression probe', () => {
  it('solves the hand-worked one-feature example', async () => {
    // x = 0,1,2,3, classes 0,0,1,1, λ = 1: centered Σx² = 5, xcᵀyc = ∓2, so w = ∓1/3 and b = (1, 0).
    const ridge = new RidgeAccumulator(1, { classCount: 2, lambda: 1, lambdaScale: 'absolute', backend: 'typescript' });
    await ridge.add(HostTensor.from('float32', [4, 1], [0, 1, 2, 3]), [0, 0, 1, 1]);
    const model = await ridge.fit();
    expectAllClose(model.weights, [-1 / 3, 1 / 3], 1e-14);
    expectAllClose(model.bias, [1, 0], 1e-14);
    expectAllClose(model.predict(HostTensor.from('float32', [2, 1], [0, 3])).toArray(), [1, 0, 0, 1], 1e-14);
  });

  for (const backend of backends) {
    it(`matches Gaussian elimination on the augmented normal equations, in chunks (${backend})`, async () => {
      const [n, d, classes, lambda] = [61, 5, 3, 0.7];
      const features = randomTensor([n, d], 3);
      const shifted = HostTensor.from(
        'float32',
        [n, d],
        features.toArray().map((v, i) => v + (i % d) * 2),
      );
      const labels = Array.from({ length: n }, (_, i) => (i * 5 + (i >> 3)) % classes);
      const want = ridgeByGaussianElimination(shifted.toArray(), n, d, labels, classes, lambda);
      const ridge = new RidgeAccumulator(d, { classCount: classes, lambda, lambdaScale: 'absolute', backend, chunkRows: 16 });
      await ridge.add(shifted.slice([0], [20]), labels.slice(0, 20));
      await ridge.add(shifted.slice([20], [n]), labels.slice(20));
      const model = await ridge.fit();
      expectAllClose(model.weights, want.weights, 1e-10);
      expectAllClose(model.bias, want.bias, 1e-10);
    });
  }

  it('scales a relative λ by the mean diagonal of the centered Gram matrix', async () => {
    const x = [1, 10, 2, 20, 4, 50];
    // Column means 7/3 and 80/3; centered sums of squares 14/3 and 2600/3; mean diagonal 2614/6.
    const ridge = new RidgeAccumulator(2, { classCount: 2, lambda: 0.5, backend: 'typescript' });
    await ridge.add(HostTensor.from('float64', [3, 2], x), [0, 1, 1]);
    const model = await ridge.fit();
    expect(model.penalty).toBeCloseTo((0.5 * 2614) / 6, 9);
    const want = ridgeByGaussianElimination(x, 3, 2, [0, 1, 1], 2, model.penalty);
    expectAllClose(model.weights, want.weights, 1e-10);
  });

  it('separates separable clusters and names non-positive-definite systems and bad labels', async () => {
    const train = rows([
      [0, 0],
      [0.1, 0.2],
      [5, 5],
      [5.2, 4.9],
      [0, 5],
      [0.1, 5.1],
    ]);
    const { metrics } = await ridgeProbe({
      train,
      trainLabels: [0, 0, 1, 1, 2, 2],
      test: rows([
        [0.05, 0.1],
        [5.1, 5],
        [0, 4.8],
      ]),
      testLabels: [0, 1, 2],
      classCount: 3,
    });
    expect(metrics.top1).toBe(100);
    const collinear = new RidgeAccumulator(2, { classCount: 2, lambda: 0, backend: 'typescript' });
    await collinear.add(
      rows([
        [1, 2],
        [2, 4],
        [3, 6],
      ]),
      [0, 1, 1],
    );
    await expect(collinear.fit()).rejects.toThrow(/not positive definite .* use a larger lambda/);
    const ridge = new RidgeAccumulator(2, { classCount: 2, backend: 'typescript' });
    await expect(ridge.add(rows([[1, 2]]), [2])).rejects.toThrow(/label 2 of row 0 is outside the classes 0\.\.1/);
    await expect(new RidgeAccumulator(2, { classCount: 2 }).fit()).rejects.toThrow(/no training row/);
  });
});
