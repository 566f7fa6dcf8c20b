import { ConfigError } from '../errors.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { add } from '../ops/add.js';
import { div } from '../ops/div.js';
import { mul } from '../ops/mul.js';
import { pow } from '../ops/pow.js';
import { sqrt } from '../ops/sqrt.js';
import { sub } from '../ops/sub.js';

/** What an optimizer's update receives for one parameter. @public */
export interface OptimizerUpdateInput {
  /** Current value. */
  parameter: SymbolicTensor;
  /** Gradient of the loss. */
  gradient: SymbolicTensor;
  /** Current per-parameter state, in the order of {@link Optimizer.slots}. */
  slots: readonly SymbolicTensor[];
  /** Learning rate (a graph input, so schedules need no recompilation). */
  learningRate: SymbolicTensor;
  /** Number of the step being taken, 1-based (float scalar). */
  step: SymbolicTensor;
}

/**
 * An optimizer expressed as graph ops, so that the update runs inside the
 * same ONNX session run as forward and backward.
 *
 * @public
 */
export interface Optimizer {
  /** Name for messages. */
  readonly name: string;
  /** Names of the per-parameter state tensors (each shaped like the parameter, zero-initialized). */
  readonly slots: readonly string[];
  /** Builds the updated parameter and state. */
  update(input: OptimizerUpdateInput): {
    /** The parameter after the step. */
    parameter: SymbolicTensor;
    /** The state tensors after the step, in the order of {@link Optimizer.slots}. */
    slots: SymbolicTensor[];
  };
}

function expectNonNegative(optimizer: string, name: string, value: number, upper = Infinity): void {
  if (!(Number.isFinite(value) && value >= 0 && value < upper)) {
    throw new ConfigError(`${optimizer}: expected ${name} in [0, ${upper === Infinity ? 'inf' : upper}); found ${value}`);
  }
}

/** Options of {@link sgd}. @public */
export interface SgdOptions {
  /** Momentum factor (default 0). */
  momentum?: number;
  /** Nesterov momentum (default false; needs momentum > 0). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
}

/**
 * Stochastic gradient descent with PyTorch's `torch.optim.SGD` semantics
 * (dampening 0): `d = g + wd*p; buf = momentum*buf + d; d = nesterov ? d + momentum*buf : buf; p -= lr*d`.
 *
 * @throws {@link ConfigError} for negative values or nesterov without momentum
 * @public
 */
export function sgd(options: SgdOptions = {}): Optimizer {
  const momentum = options.momentum ?? 0;
  const weightDecay = options.weightDecay ?? 0;
  const nesterov = options.nesterov ?? false;
  expectNonNegative('sgd', 'momentum', momentum);
  expectNonNegative('sgd', 'weightDecay', weightDecay);
  if (nesterov && momentum === 0) throw new ConfigError('sgd: nesterov needs momentum > 0; found momentum 0');
  return {
    name: 'sgd',
    slots: momentum > 0 ? ['momentum_buffer'] : [],
    update({ parameter, gradient, slots, learningRate }) {
      let direction = weightDecay > 0 ? add(gradient, mul(parameter, weightDecay)) : gradient;
      const newSlots: SymbolicTensor[] = [];
      if (momentum > 0) {
        const buffer = add(mul(slots[0]!, momentum), direction);
        newSlots.push(buffer);
        direction = nesterov ? add(direction, mul(buffer, momentum)) : buffer;
      }
      return { parameter: sub(parameter, mul(direction, learningRate)), slots: newSlots };
    },
  };
}

/** Options of {@link adamw}. @public */
export interface AdamWOptions {
  /** Coefficients of the running averages (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator (default 1e-8). */
  epsilon?: number;
  /** Decoupled weight decay (default 0.01). */
  weightDecay?: number;
}

/**
 * AdamW with PyTorch's `torch.optim.AdamW` semantics:
 * `p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
 * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)`.
 *
 * @throws {@link ConfigError} for out-of-range coefficients
 * @public
 */
export function adamw(options: AdamWOptions = {}): Optimizer {
  const [beta1, beta2] = options.betas ?? [0.9, 0.999];
  const epsilon = options.epsilon ?? 1e-8;
  const weightDecay = options.weightDecay ?? 0.01;
  expectNonNegative('adamw', 'betas[0]', beta1, 1);
  expectNonNegative('adamw', 'betas[1]', beta2, 1);
  expectNonNegative('adamw', 'epsilon', epsilon);
  expectNonNegative('adamw', 'weightDecay', weightDecay);
  return {
    name: 'adamw',
    slots: ['exp_avg', 'exp_avg_sq'],
    update({ parameter, gradient, slots, learningRate, step }) {
      const decayed = weightDecay > 0 ? mul(parameter, sub(1, mul(learningRate, weightDecay))) : parameter;
      const average = add(mul(slots[0]!, beta1), mul(gradient, 1 - beta1));
      const averageSquare = add(mul(slots[1]!, beta2), mul(mul(gradient, gradient), 1 - beta2));
      const correction1 = sub(1, pow(parameter.graph.scalar(beta1, parameter.dtype), step));
      const correction2 = sub(1, pow(parameter.graph.scalar(beta2, parameter.dtype), step));
      const denominator = add(sqrt(div(averageSquare, correction2)), epsilon);
      const updated = sub(decayed, mul(learningRate, div(div(average, correction1), denominator)));
      return { parameter: updated, slots: [average, averageSquare] };
    },
  };
}
