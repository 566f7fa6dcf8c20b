import type { SymbolicTensor } from '../graph/graph.js';
import type { FloatArray } from '../reference/kernel-utils.js';
import { add } from './add.js';
import { div } from './div.js';
import { mean } from './mean.js';
import { mul } from './mul.js';
import { sqrt } from './sqrt.js';
import { sub } from './sub.js';

/** `(x - mean) / sqrt(var + eps)` over `axes` (biased variance), with `rstd` kept for reuse. */
export function standardize(x: SymbolicTensor, axes: readonly number[], epsilon: number): { normalized: SymbolicTensor; inverseStd: SymbolicTensor } {
  const centered = sub(x, mean(x, axes, true));
  const variance = mean(mul(centered, centered), axes, true);
  const inverseStd = div(1, sqrt(add(variance, epsilon)));
  return { normalized: mul(centered, inverseStd), inverseStd };
}

/**
 * Gradient of {@link standardize} with respect to x, given the gradient with
 * respect to its output: `rstd * (g - mean(g) - xhat * mean(g * xhat))`.
 */
export function standardizeGradient(x: SymbolicTensor, gradient: SymbolicTensor, axes: readonly number[], epsilon: number): SymbolicTensor {
  const { normalized, inverseStd } = standardize(x, axes, epsilon);
  const centered = sub(sub(gradient, mean(gradient, axes, true)), mul(normalized, mean(mul(gradient, normalized), axes, true)));
  return mul(inverseStd, centered);
}

/**
 * Reference: standardizes `count` contiguous groups of `groupSize` values in
 * place in `out` (two-pass mean and biased variance, float64 accumulation).
 */
export function standardizeGroups(data: FloatArray, out: FloatArray, groupSize: number, epsilon: number): void {
  for (let start = 0; start < data.length; start += groupSize) {
    let total = 0;
    for (let i = 0; i < groupSize; i++) total += data[start + i]!;
    const average = total / groupSize;
    let squares = 0;
    for (let i = 0; i < groupSize; i++) squares += (data[start + i]! - average) ** 2;
    const inverseStd = 1 / Math.sqrt(squares / groupSize + epsilon);
    for (let i = 0; i < groupSize; i++) out[start + i] = (data[start + i]! - average) * inverseStd;
  }
}
