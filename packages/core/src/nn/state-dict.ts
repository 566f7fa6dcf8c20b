import { StateDictMismatchError } from '../errors.js';
import type { HostTensor } from '../tensor/host-tensor.js';

/** `float32[10, 32]`: dtype and shape for messages. */
export function describeTensor(tensor: Pick<HostTensor, 'dtype' | 'shape'>): string {
  return `${tensor.dtype}[${tensor.shape.join(', ')}]`;
}

/**
 * Checks given named tensors against expected ones: every expected name
 * present with the same dtype and shape, nothing unexpected (unless allowed).
 *
 * @param what - the operation, for the error message
 * @param expected - the tensors the model has
 * @param given - the tensors offered
 * @param allowUnexpected - names that may be given without being expected
 * @throws {@link StateDictMismatchError} listing every mismatch
 */
export function checkStateDict(
  what: string,
  expected: ReadonlyMap<string, Pick<HostTensor, 'dtype' | 'shape'>>,
  given: ReadonlyMap<string, Pick<HostTensor, 'dtype' | 'shape'>>,
  allowUnexpected: (name: string) => boolean = () => false,
): void {
  const missing: string[] = [];
  const misshaped: string[] = [];
  for (const [name, tensor] of expected) {
    const value = given.get(name);
    if (!value) missing.push(name);
    else if (value.dtype !== tensor.dtype || value.shape.join() !== tensor.shape.join())
      misshaped.push(`${name}: expected ${describeTensor(tensor)}, found ${describeTensor(value)}`);
  }
  const unexpected = [...given.keys()].filter((name) => !expected.has(name) && !allowUnexpected(name));
  if (missing.length || unexpected.length || misshaped.length) throw new StateDictMismatchError(what, { missing, unexpected, misshaped });
}
