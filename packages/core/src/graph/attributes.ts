import type { HostTensor } from '../tensor/host-tensor.js';

/**
 * An ONNX node attribute value, tagged with its ONNX type so that integers and
 * floats are never confused.
 *
 * @public
 */
export type OnnxAttribute =
  | { type: 'int'; value: number }
  | { type: 'ints'; value: readonly number[] }
  | { type: 'float'; value: number }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: HostTensor }
  | { type: 'graph'; value: unknown };

/** Builders for tagged ONNX attributes. @public */
export const attr = {
  /** An INT attribute. */
  int: (value: number): OnnxAttribute => ({ type: 'int', value }),
  /** An INTS attribute. */
  ints: (value: readonly number[]): OnnxAttribute => ({ type: 'ints', value }),
  /** A FLOAT attribute. */
  float: (value: number): OnnxAttribute => ({ type: 'float', value }),
  /** A FLOATS attribute. */
  floats: (value: readonly number[]): OnnxAttribute => ({ type: 'floats', value }),
  /** A STRING attribute. */
  string: (value: string): OnnxAttribute => ({ type: 'string', value }),
  /** A TENSOR attribute. */
  tensor: (value: HostTensor): OnnxAttribute => ({ type: 'tensor', value }),
};
