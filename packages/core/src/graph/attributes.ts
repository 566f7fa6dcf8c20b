import type { HostTensor } from '../tensor/host-tensor.js';

/**
 * An ONNX node attribute value, tagged with its ONNX type so that integers and
 * floats are never confused.
 *
 * @public
 */
export type OnnxAttribute =
  | {
      /** ONNX type INT. */
      type: 'int';
      /** The integer. */
      value: number;
    }
  | {
      /** ONNX type INTS. */
      type: 'ints';
      /** The integers. */
      value: readonly number[];
    }
  | {
      /** ONNX type FLOAT. */
      type: 'float';
      /** The number. */
      value: number;
    }
  | {
      /** ONNX type FLOATS. */
      type: 'floats';
      /** The numbers. */
      value: readonly number[];
    }
  | {
      /** ONNX type STRING. */
      type: 'string';
      /** The string. */
      value: string;
    }
  | {
      /** ONNX type TENSOR. */
      type: 'tensor';
      /** The tensor, stored in the model. */
      value: HostTensor;
    }
  | {
      /** ONNX type GRAPH (a subgraph, such as a Loop body). */
      type: 'graph';
      /** The subgraph. */
      value: unknown;
    };

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
