import { describe, expect, it } from 'vitest';
import { FormatError, HostTensor, readSafetensors, writeSafetensors } from '../index.js';
import { seededRandom } from '@diffssl/testing';

function withHeader(header: string, data = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + json.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  bytes.set(data, 8 + json.length);
  return bytes;
}

describe('safetensors', () => {
  it('round-trips every dtype, views and metadata', () => {
    const tensors = {
      a: HostTensor.from('float32', [2, 2], [1, 2, 3, 4]).transpose([1, 0]),
      b: HostTensor.from('int64', [3], [1n, -2n, 3n]),
      c: HostTensor.from('float16', [2], [0.5, -1]),
      d: HostTensor.from('uint8', [1], [7]),
      e: HostTensor.from('float64', [], [Math.PI]),
    };
    const file = readSafetensors(writeSafetensors(tensors, { config: '{"x":1}' }));
    expect(file.metadata).toEqual({ config: '{"x":1}' });
    expect(file.tensors.get('a')!.toArray()).toEqual([1, 3, 2, 4]);
    expect(file.tensors.get('b')!.data[1]).toBe(-2n);
    expect(file.tensors.get('c')!.toArray()).toEqual([0.5, -1]);
    expect(file.tensors.get('e')!.get()).toBe(Math.PI);
  });

  it('rejects malformed files with FormatError', () => {
    const cases: Uint8Array[] = [
      new Uint8Array(3),
      withHeader('{'),
      withHeader('[]'),
      withHeader('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', new Uint8Array(4)),
      withHeader('{"x":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)),
      withHeader('{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', new Uint8Array(4)),
      withHeader('{"x":{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}}', new Uint8Array(4)),
      withHeader('{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', new Uint8Array(4)),
      withHeader('{"__metadata__":{"a":1}}'),
    ];
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 62n, true);
    cases.push(huge);
    for (const bytes of cases) expect(() => readSafetensors(bytes)).toThrow(FormatError);
  });

  it('survives random truncation and corruption with typed errors only', () => {
    const valid = writeSafetensors({ w: HostTensor.from('float32', [4, 4], Array.from({ length: 16 }, (_, i) => i)), n: HostTensor.from('int64', [2], [1n, 2n]) }, { m: 'x' });
    const random = seededRandom(3);
    for (let trial = 0; trial < 500; trial++) {
      const bytes = valid.slice(0, Math.floor(random() * (valid.length + 1)));
      const flips = Math.floor(random() * 4);
      for (let f = 0; f < flips && bytes.length > 0; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      try {
        readSafetensors(bytes);
      } catch (error) {
        expect(error).toBeInstanceOf(FormatError);
      }
    }
  });
});
