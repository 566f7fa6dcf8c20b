import { attr } from '../graph/attributes.js';
import { ConfigError, ShapeError } from '../errors.js';
import { dimsEqual, formatShape } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { expectRank } from '../graph/shape.js';
import { floatTensor } from '../reference/kernel-utils.js';
import { div } from './div.js';
import { mul } from './mul.js';
import { oneHot } from './one-hot.js';
import { lowerLogSoftmax } from './log-softmax.js';
import { reshape } from './reshape.js';
import { sizeOf } from './size-of.js';
import { softmax, softmaxKernel } from './softmax.js';
import { sub } from './sub.js';

/** How {@link crossEntropy} reduces over the batch. @public */
export type Reduction = 'mean' | 'sum' | 'none';

/** Attributes of {@link crossEntropy}. */
export interface CrossEntropyAttributes {
  readonly reduction: Reduction;
}

/** The `crossEntropy` op. Gradient (logits): (softmax(logits) - onehot(labels)) * dy, divided by N for the mean. */
export const crossEntropyOp = defineOp<CrossEntropyAttributes>({
  name: 'crossEntropy',
  infer([logits, labels], { reduction }) {
    expectDtype('crossEntropy', 'logits', logits!, FLOAT_TYPES);
    expectDtype('crossEntropy', 'labels', labels!, ['int64']);
    expectRank('crossEntropy', 'logits', logits!.shape, 2);
    expectRank('crossEntropy', 'labels', labels!.shape, 1);
    if (!dimsEqual(logits!.shape[0]!, labels!.shape[0]!)) {
      throw new ShapeError(
        `crossEntropy: expected labels of shape [${logits!.shape[0]}] for logits ${formatShape(logits!.shape)}; found ${formatShape(labels!.shape)}`,
      );
    }
    if (!['mean', 'sum', 'none'].includes(reduction)) throw new ConfigError(`crossEntropy: expected reduction 'mean', 'sum' or 'none'; found '${reduction}'`);
    return [{ dtype: logits!.dtype, shape: reduction === 'none' ? [logits!.shape[0]!] : [] }];
  },
  lower(context, [logits, labels], { reduction }) {
    const logProbabilities = lowerLogSoftmax(context, logits!, 1);
    const column = context.emit('Unsqueeze', [labels!, context.int64s([1])])[0]!;
    const picked = context.emit('GatherElements', [logProbabilities, column], { axis: attr.int(1) })[0]!;
    const losses = context.emit('Neg', [context.emit('Squeeze', [picked, context.int64s([1])])[0]!])[0]!;
    if (reduction === 'none') return [losses];
    return context.emit(reduction === 'mean' ? 'ReduceMean' : 'ReduceSum', [losses], { keepdims: attr.int(0) });
  },
  reference([logits, labels], { reduction }) {
    const logProbabilities = softmaxKernel('crossEntropy', logits!, 1, true);
    const [n, k] = logits!.shape as [number, number];
    const values = labels!.toArray();
    const losses = floatTensor(logits!.dtype, [n]);
    for (let i = 0; i < n; i++) {
      const label = values[i]!;
      if (!(Number.isInteger(label) && label >= 0 && label < k)) throw new ShapeError(`crossEntropy: label ${label} at ${i} is outside 0..${k - 1}`);
      losses.data[i] = -logProbabilities.data[i * k + label]!;
    }
    if (reduction === 'none') return [losses];
    let total = 0;
    for (const loss of losses.data) total += loss;
    const out = floatTensor(logits!.dtype, []);
    out.data[0] = reduction === 'mean' ? total / n : total;
    return [out];
  },
  gradient: ({ inputs, outputGradients, attributes }) => {
    const [logits, labels] = inputs as [SymbolicTensor, SymbolicTensor];
    const dy = outputGradients[0]!;
    const difference = sub(softmax(logits, 1), oneHot(labels, logits.shape[1] as number, logits.dtype));
    if (attributes.reduction === 'none') return [mul(difference, reshape(dy, [logits.shape[0]!, 1])), undefined];
    const scaled = mul(difference, dy);
    return [attributes.reduction === 'mean' ? div(scaled, sizeOf(logits, [0])) : scaled, undefined];
  },
});

/**
 * Cross-entropy of logits against integer class labels (as
 * `torch.nn.functional.cross_entropy`).
 *
 * @param logits - float [N, K]
 * @param labels - int64 [N], values in 0..K-1
 * @param reduction - 'mean' (default), 'sum' or 'none'
 * @throws {@link ShapeError} when shapes disagree; {@link DTypeError} for non-int64 labels
 * @public
 */
export function crossEntropy(logits: SymbolicTensor, labels: SymbolicTensor, reduction: Reduction = 'mean'): SymbolicTensor {
  if (typeof logits.shape[1] !== 'number') throw new ShapeError(`crossEntropy: expected a static number of classes; found logits ${formatShape(logits.shape)}`);
  return crossEntropyOp.apply([logits, labels], { reduction })[0]!;
}
