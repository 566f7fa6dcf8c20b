import { describe, expect, it } from 'vitest';
import { bytesPerElement, FormatError, HostTensor, readSafetensors, writeSafetensors } from '../index.js';
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
  it('round-trips every dtype, views and metadata, in the layout the format specifies', () => {
    const tensors = {
      a: HostTensor.from('float32', [2, 2], [1, 2, 3, 4]).transpose([1, 0]),
      b: HostTensor.from('int64', [3], [1n, -2n, 3n]),
      c: HostTensor.from('float16', [2], [0.5, -1]),
      d: HostTensor.from('uint8', [3], [7, 0, 255]),
      e: HostTensor.from('float64', [], [Math.PI]),
      f: HostTensor.from('int32', [2], [-7, 2147483647]),
      g: HostTensor.from('bool', [3], [1, 0, 1]),
    };
    const bytes = writeSafetensors(tensors, { config: '{"x":1}' });

    // The header as the format defines it: u64 little-endian length, then JSON padded with spaces to 8 bytes.
    const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    const json = headerText.trimEnd();
    expect(headerText).toBe(json.padEnd(headerLength, ' '));
    expect(headerLength - json.length).toBeLessThan(8);
    const header = JSON.parse(json) as Record<string, unknown>;
    // Data offsets are relative to the end of the header, tensors back to back in insertion order:
    // a 4 x 4 bytes, b 3 x 8, c 2 x 2, d 3 x 1, e 1 x 8, f 2 x 4, g 3 x 1.
    expect(header).toEqual({
      __metadata__: { config: '{"x":1}' },
      a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
      b: { dtype: 'I64', shape: [3], data_offsets: [16, 40] },
      c: { dtype: 'F16', shape: [2], data_offsets: [40, 44] },
      d: { dtype: 'U8', shape: [3], data_offsets: [44, 47] },
      e: { dtype: 'F64', shape: [], data_offsets: [47, 55] },
      f: { dtype: 'I32', shape: [2], data_offsets: [55, 63] },
      g: { dtype: 'BOOL', shape: [3], data_offsets: [63, 66] },
    });
    expect(bytes.byteLength).toBe(8 + headerLength + 66);

    // Raw little-endian bytes, written out by hand. a is the transposed view, stored row-major: 1, 3, 2, 4.
    const data = (begin: number, end: number) => [...bytes.subarray(8 + headerLength + begin, 8 + headerLength + end)];
    expect(data(0, 16)).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x80, 0x40]);
    expect(data(16, 40)).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0, 0, 0, 0, 0]);
    expect(data(40, 44)).toEqual([0x00, 0x38, 0x00, 0xbc]); // half 0.5 = 0x3800, -1 = 0xbc00
    expect(data(44, 47)).toEqual([7, 0, 255]);
    expect(data(47, 55)).toEqual([0x18, 0x2d, 0x44, 0x54, 0xfb, 0x21, 0x09, 0x40]); // pi = 0x400921fb54442d18
    expect(data(55, 63)).toEqual([0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    expect(data(63, 66)).toEqual([1, 0, 1]);

    const file = readSafetensors(bytes);
    expect(file.metadata).toEqual({ config: '{"x":1}' });
    expect([...file.tensors.keys()]).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    const read = (name: string) => file.tensors.get(name)!;
    expect(Object.fromEntries([...file.tensors].map(([name, tensor]) => [name, [tensor.dtype, tensor.shape]]))).toEqual({
      a: ['float32', [2, 2]],
      b: ['int64', [3]],
      c: ['float16', [2]],
      d: ['uint8', [3]],
      e: ['float64', []],
      f: ['int32', [2]],
      g: ['bool', [3]],
    });
    expect(read('a').toArray()).toEqual([1, 3, 2, 4]);
    expect([...(read('b').contiguous().data as BigInt64Array)]).toEqual([1n, -2n, 3n]);
    expect(read('c').toArray()).toEqual([0.5, -1]);
    expect(read('d').toArray()).toEqual([7, 0, 255]);
    expect(read('e').get()).toBe(Math.PI);
    expect(read('f').toArray()).toEqual([-7, 2147483647]);
    expect(read('g').toArray()).toEqual([1, 0, 1]);
  });

  it("stores int8 (quantized weights) as I8, two's complement bytes", () => {
    const bytes = writeSafetensors({ w: HostTensor.from('int8', [4], [-128, -1, 0, 127]) });
    const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)))).toEqual({ w: { dtype: 'I8', shape: [4], data_offsets: [0, 4] } });
    expect([...bytes.subarray(8 + headerLength)]).toEqual([0x80, 0xff, 0x00, 0x7f]);
    const read = readSafetensors(bytes).tensors.get('w')!;
    expect(read.dtype).toBe('int8');
    expect(read.toArray()).toEqual([-128, -1, 0, 127]);
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

  it('rejects every truncation, and survives random truncation and corruption with typed errors only', () => {
    const valid = writeSafetensors(
      {
        w: HostTensor.from(
          'float32',
          [4, 4],
          Array.from({ length: 16 }, (_, i) => i),
        ),
        n: HostTensor.from('int64', [2], [1n, 2n]),
      },
      { m: 'x' },
    );
    // The writer leaves no slack after the last tensor, so every strict prefix cuts the length field, the
    // header or the data of the last tensor: all of them must be rejected.
    for (let length = 0; length < valid.length; length++) {
      expect(() => readSafetensors(valid.slice(0, length)), `prefix of ${length} of ${valid.length} bytes`).toThrow(FormatError);
    }

    const random = seededRandom(3);
    const counts = { pureTruncations: 0, rejected: 0, accepted: 0 };
    for (let trial = 0; trial < 500; trial++) {
      // A third each: truncation only, corruption only, both.
      const kind = trial % 3;
      const bytes = valid.slice(0, kind === 1 ? valid.length : Math.floor(random() * (valid.length + 1)));
      const flips = kind === 0 ? 0 : 1 + Math.floor(random() * 3);
      for (let f = 0; f < flips && bytes.length > 0; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      // A "flip" can write the byte that was there: what counts is whether the bytes differ from the file's.
      const pureTruncation = bytes.length < valid.length && bytes.every((byte, i) => byte === valid[i]);
      let file: ReturnType<typeof readSafetensors> | undefined;
      try {
        file = readSafetensors(bytes);
      } catch (error) {
        expect(error, `trial ${trial}`).toBeInstanceOf(FormatError);
      }
      if (pureTruncation) {
        counts.pureTruncations++;
        expect(file, `trial ${trial}: a truncation to ${bytes.length} of ${valid.length} bytes was accepted`).toBeUndefined();
      }
      if (file === undefined) {
        counts.rejected++;
        continue;
      }
      counts.accepted++;
      expectConsistent(bytes, file, `trial ${trial}`);
    }
    expect(counts.pureTruncations).toBeGreaterThan(100);
    expect(counts.rejected).toBeGreaterThan(counts.pureTruncations);
    // Corrupted tensor data still parses: make sure the consistency check above ran.
    expect(counts.accepted).toBeGreaterThan(0);
  });
});

/**
 * Checks a file the reader accepted against its header, parsed here
 * independently: the same tensor names, and each tensor's dtype, shape and
 * byte size agree with the header entry, and its bytes are the ones its
 * data_offsets name (no garbage, no reads past the data).
 */
function expectConsistent(bytes: Uint8Array, file: ReturnType<typeof readSafetensors>, label: string): void {
  const codes: Record<string, string> = { float32: 'F32', float64: 'F64', float16: 'F16', int32: 'I32', int64: 'I64', uint8: 'U8', int8: 'I8', bool: 'BOOL' };
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  expect([...file.tensors.keys()], label).toEqual(Object.keys(header).filter((name) => name !== '__metadata__'));
  for (const [name, tensor] of file.tensors) {
    const entry = header[name]!;
    const [begin, end] = entry.data_offsets;
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    expect(codes[tensor.dtype], `${label}: ${name}`).toBe(entry.dtype);
    expect(tensor.shape, `${label}: ${name}`).toEqual(entry.shape);
    expect(tensor.data.length, `${label}: ${name}`).toBe(elements);
    expect(tensor.data.byteLength, `${label}: ${name}`).toBe(elements * bytesPerElement(tensor.dtype));
    expect(end - begin, `${label}: ${name}`).toBe(tensor.data.byteLength);
    expect(8 + headerLength + end, `${label}: ${name}`).toBeLessThanOrEqual(bytes.byteLength);
    const stored = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    expect([...stored], `${label}: ${name}`).toEqual([...bytes.subarray(8 + headerLength + begin, 8 + headerLength + end)]);
  }
}
