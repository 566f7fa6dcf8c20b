/**
 * Small files that would cost a lot of time or memory: each must be read or
 * refused quickly (the generous per-test timeouts are the only timing here;
 * without the guards these cases hang, loop or allocate gigabytes).
 */
import { FormatError } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { storedZip, statePickle, type TensorRecord } from '@diffssl/testing';
import { readTorchCheckpoint, restrictedUnpickle, UnsafePickleError } from '../index.js';

type Part = number | string | Part[];
const bytes = (...parts: Part[]): number[] =>
  parts.flatMap((p) => (typeof p === 'string' ? [...new TextEncoder().encode(p)] : Array.isArray(p) ? bytes(...p) : [p]));
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const str = (s: string) => ['X', u32(new TextEncoder().encode(s).length), s];
const int = (v: number) => ['J', u32(v)];
const pickle = (...parts: Part[]) => new Uint8Array([0x80, 2, ...bytes(...parts), 0x2e]);
const checkpoint = (body: Uint8Array, storages: Record<string, Uint8Array> = { 'archive/data/0': new Uint8Array(4) }) =>
  storedZip({ 'archive/data.pkl': body, ...storages });

/** _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel), 0, shape, strides, False, None) */
const tensor = (numel: number, shape: number[], strides: number[]): Part[] => [
  'c',
  'torch._utils\n_rebuild_tensor_v2\n',
  '(',
  '(',
  str('storage'),
  'c',
  'torch\nFloatStorage\n',
  str('0'),
  str('cpu'),
  int(numel),
  't',
  'Q',
  int(0),
  '(',
  ...shape.map(int),
  't',
  '(',
  ...strides.map(int),
  't',
  0x89,
  'N',
  't',
  'R',
];

describe('shared and cyclic structure', () => {
  it('refuses a ~1 KB pickle whose dicts share memoized children 16 levels deep (6^16 paths) with FormatError', async () => {
    // Level 0 = {'w': tensor}; level k = {'a': level k-1, ..., 'f': level k-1}, each memoized and recalled by index.
    const levels: Part[] = ['}', str('w'), tensor(1, [1], [1]), 's', 'q', 0];
    for (let level = 1; level <= 16; level++) {
      levels.push('0', '}', '(', ...'abcdef'.split('').flatMap((key) => [str(key), 'h', level - 1]), 'u', 'q', level);
    }
    const body = pickle(...levels);
    expect(body.byteLength).toBeLessThan(1500);
    const error = await readTorchCheckpoint(checkpoint(body)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as Error).message).toMatch(/shared so often that reading it would visit more than \d+ entries/);
  }, 10_000);

  it('still reads a dict shared a few times, and the same tensor under two names (tied weights)', async () => {
    // D = {'w': T}; root = {'a': D, 'b': D, 'tied': T}
    const body = pickle('}', str('w'), tensor(1, [1], [1]), 'q', 1, 's', 'q', 0, '0', '}', '(', str('a'), 'h', 0, str('b'), 'h', 0, str('tied'), 'h', 1, 'u');
    const tensors = await readTorchCheckpoint(checkpoint(body, { 'archive/data/0': new Uint8Array(new Float32Array([2.5]).buffer) }));
    expect([...tensors.keys()]).toEqual(['a.w', 'b.w', 'tied']);
    expect([...tensors.values()].map((t) => t.toArray()[0])).toEqual([2.5, 2.5, 2.5]);
  });

  it('refuses a dict that contains itself, and nesting deeper than 16 dicts', async () => {
    const cyclic = pickle('}', 'q', 0, '(', str('self'), 'h', 0, str('w'), tensor(1, [1], [1]), 'u');
    await expect(readTorchCheckpoint(checkpoint(cyclic))).rejects.toThrow(/contains itself|nested deeper/);
    const nested: Part[] = ['}', str('w'), tensor(1, [1], [1]), 's'];
    for (let level = 0; level < 17; level++) nested.unshift('}', str(`n${level}`));
    for (let level = 0; level < 17; level++) nested.push('s');
    await expect(readTorchCheckpoint(checkpoint(pickle(...nested)))).rejects.toThrow(/nested deeper than 16 levels/);
  });
});

describe('declared sizes', () => {
  it('refuses a tensor of 2^40 elements viewed (stride 0) over a 1-element storage instead of returning it', async () => {
    const body = pickle('}', str('w'), tensor(1, [1 << 20, 1 << 20], [0, 0]), 's');
    await expect(readTorchCheckpoint(checkpoint(body))).rejects.toThrow(/declares 1099511627776 elements over a storage of 1; overlapping views/);
  });

  it('refuses a storage that claims more elements than its record holds before allocating, and 255-byte integers as sizes', async () => {
    const body = pickle('}', str('w'), tensor(2 ** 30, [2 ** 30], [1]), 's');
    await expect(readTorchCheckpoint(checkpoint(body))).rejects.toThrow(/holds 4 bytes; 1073741824 FloatStorage elements need 4294967296/);
    const long1 = [0x8a, 255, ...new Array(254).fill(0xff), 0x7f];
    const huge = pickle(
      '}',
      str('w'),
      'c',
      'torch._utils\n_rebuild_tensor_v2\n',
      '(',
      '(',
      str('storage'),
      'c',
      'torch\nFloatStorage\n',
      str('0'),
      str('cpu'),
      long1,
      't',
      'Q',
      int(0),
      '(',
      int(1),
      't',
      '(',
      int(1),
      't',
      0x89,
      'N',
      't',
      'R',
      's',
    );
    expect(() => restrictedUnpickle(huge)).toThrow(/storage numel must be a non-negative integer/);
  });

  it('reads 20,000 one-element storages (a 5 MB file) and returns every tensor', async () => {
    const records: Record<string, TensorRecord> = {};
    for (let i = 0; i < 20_000; i++)
      records[`t${i}`] = { storageType: 'FloatStorage', bytes: new Uint8Array(new Float32Array([i]).buffer), numel: 1, offset: 0, shape: [1], strides: [1] };
    const names = Object.keys(records);
    const zip = storedZip({
      'archive/data.pkl': statePickle(names, Object.values(records)),
      ...Object.fromEntries(names.map((_, i) => [`archive/data/${i}`, records[names[i]!]!.bytes])),
    });
    const tensors = await readTorchCheckpoint(zip);
    expect(tensors.size).toBe(20_000);
    expect(tensors.get('t19999')!.toArray()).toEqual([19999]);
  }, 60_000);
});

describe('the pickle machine', () => {
  it('refuses negative string lengths instead of moving backwards (an endless loop)', () => {
    // BINSTRING with length -5 would jump back onto itself.
    expect(() => restrictedUnpickle(new Uint8Array([0x80, 2, 0x54, ...u32(-5 >>> 0), 0x2e]))).toThrow(FormatError);
  }, 10_000);

  it('appends 300,000 items in one APPENDS without overflowing the call stack', () => {
    const list = restrictedUnpickle(new Uint8Array([0x80, 2, 0x5d, 0x28, ...new Array(300_000).fill(0x4e), 0x65, 0x2e]));
    expect(Array.isArray(list) && list.length).toBe(300_000);
  });

  it('handles memo indices near 2^32 and refuses undefined ones', () => {
    const value = restrictedUnpickle(new Uint8Array([0x80, 2, 0x7d, 0x72, 0xf0, 0xff, 0xff, 0xff, 0x30, 0x6a, 0xf0, 0xff, 0xff, 0xff, 0x2e]));
    expect(value).not.toBeNull();
    expect(() => restrictedUnpickle(new Uint8Array([0x80, 2, 0x6a, 0xff, 0xff, 0xff, 0xff, 0x2e]))).toThrow(/memo entry 4294967295 is not defined/);
  });

  it('keeps errors short for a megabyte-long global name', () => {
    const name = 'a'.repeat(1_000_000);
    const error = (() => {
      try {
        return restrictedUnpickle(new Uint8Array([0x80, 2, ...bytes('c', `${name}\nsystem\n`), 0x2e]));
      } catch (e) {
        return e;
      }
    })() as Error;
    expect(error).toBeInstanceOf(UnsafePickleError);
    expect(error.message.length).toBeLessThan(400);
  });

  it('stops at its object limit with FormatError rather than building millions of dicts from a 2 MB pickle', () => {
    const many = new Uint8Array(2 + 2_100_000 + 1);
    many.set([0x80, 2]);
    many.fill(0x7d, 2, 2 + 2_100_000);
    many[many.length - 1] = 0x2e;
    expect(() => restrictedUnpickle(many)).toThrow(/limit/);
  }, 20_000);
});
