import { ShapeError } from '../errors.js';

/**
 * One dimension of a symbolic shape: a static size, or a named size known only
 * at run time (`'batch'`). Products of named sizes and integers are written
 * `'4*batch'`; they arise from reshapes and are handled exactly.
 *
 * @public
 */
export type Dim = number | string;

interface DimProduct {
  coefficient: number;
  names: string[];
}

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parse(dim: Dim): DimProduct {
  if (typeof dim === 'number') return { coefficient: dim, names: [] };
  let coefficient = 1;
  const names: string[] = [];
  for (const factor of dim.split('*')) {
    const trimmed = factor.trim();
    if (/^\d+$/.test(trimmed)) coefficient *= Number(trimmed);
    else if (NAME_PATTERN.test(trimmed)) names.push(trimmed);
    else throw new ShapeError(`dimension '${dim}': expected a name, an integer or a product of them joined by '*'; found factor '${factor}'`);
  }
  names.sort();
  return { coefficient, names };
}

function format(product: DimProduct): Dim {
  if (product.names.length === 0 || product.coefficient === 0) return product.coefficient;
  const names = product.names.join('*');
  return product.coefficient === 1 ? names : `${product.coefficient}*${names}`;
}

/** Whether a dimension is a static size. @public */
export function isStaticDim(dim: Dim): dim is number {
  return typeof dim === 'number';
}

/** Normalizes a dimension to its canonical spelling (`'batch*4'` -> `'4*batch'`). */
export function normalizeDim(dim: Dim): Dim {
  return format(parse(dim));
}

/** Whether two dimensions are certainly equal. */
export function dimsEqual(a: Dim, b: Dim): boolean {
  return normalizeDim(a) === normalizeDim(b);
}

/** The product of dimensions. */
export function multiplyDims(...dims: Dim[]): Dim {
  let coefficient = 1;
  const names: string[] = [];
  for (const dim of dims) {
    const product = parse(dim);
    coefficient *= product.coefficient;
    names.push(...product.names);
  }
  names.sort();
  return format({ coefficient, names });
}

/** `a / b` when it is exact (integer coefficient, names of b contained in a); undefined otherwise. */
export function divideDims(a: Dim, b: Dim): Dim | undefined {
  const numerator = parse(a);
  const denominator = parse(b);
  if (denominator.coefficient === 0 || numerator.coefficient % denominator.coefficient !== 0) return undefined;
  const names = [...numerator.names];
  for (const name of denominator.names) {
    const index = names.indexOf(name);
    if (index < 0) return undefined;
    names.splice(index, 1);
  }
  return format({ coefficient: numerator.coefficient / denominator.coefficient, names });
}

/** The named factors and the integer coefficient of a dimension. */
export function dimFactors(dim: Dim): { coefficient: number; names: readonly string[] } {
  return parse(dim);
}

/** Human-readable shape, for error messages. */
export function formatShape(shape: readonly Dim[]): string {
  return `[${shape.join(', ')}]`;
}

/** Whether every dimension is static. */
export function isStaticShape(shape: readonly Dim[]): shape is number[] {
  return shape.every(isStaticDim);
}
