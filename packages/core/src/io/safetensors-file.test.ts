import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError, HostTensor, readSafetensors, readSafetensorsFile, writeSafetensors } from '../index.js';

const directory = mkdtempSync(join(tmpdir(), 'diffssl-safetensors-file-'));

function withHeader(header: object, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const bytes = new Uint8Array(8 + json.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  bytes.set(data, 8 + json.length);
  return bytes;
}

describe('readSafetensorsFile', () => {
  it('reads every tensor and the metadata as readSafetensors reads the same bytes, each tensor in its own buffer', async () => {
    const path = join(directory, 'model.safetensors');
    const tensors = {
      w: HostTensor.from('float32', [2, 3], [1, -2, 3.5, 4, 5, 6]),
      h: HostTensor.from('float16', [3], [0.5, -1, 2]),
      n: HostTensor.from('int64', [2], [7n, -9n]),
      e: HostTensor.zeros('float32', [0, 4]),
    };
    writeFileSync(path, writeSafetensors(tensors, { config: '{"a":1}' }));
    const file = await readSafetensorsFile(path);
    const memory = readSafetensors(new Uint8Array(readFileSync(path)));
    expect(file.metadata).toEqual({ config: '{"a":1}' });
    expect([...file.tensors.keys()]).toEqual(['w', 'h', 'n', 'e']);
    expect(file.tensors.get('w')!.toArray()).toEqual([1, -2, 3.5, 4, 5, 6]);
    expect(file.tensors.get('h')!.toArray()).toEqual([0.5, -1, 2]);
    expect([...file.tensors.get('n')!.data]).toEqual([7n, -9n]);
    expect(file.tensors.get('e')!.shape).toEqual([0, 4]);
    for (const [name, tensor] of memory.tensors) expect(file.tensors.get(name)!.toArray(), name).toEqual(tensor.toArray());
    const buffers = new Set([...file.tensors.values()].map((tensor) => tensor.data.buffer));
    expect(buffers.size).toBe(4);
  });

  it('reports the tensor bytes read after each tensor', async () => {
    const path = join(directory, 'progress.safetensors');
    writeFileSync(path, writeSafetensors({ a: HostTensor.zeros('float32', [2, 3]), b: HostTensor.zeros('float16', [5]), c: HostTensor.zeros('int64', [4]) }));
    const calls: [number, number][] = [];
    await readSafetensorsFile(path, { onProgress: (read, total) => calls.push([read, total]) });
    // 24, 10 and 32 bytes, 66 in all, in file order.
    expect(calls).toEqual([
      [24, 66],
      [34, 66],
      [66, 66],
    ]);
  });

  it('hands each tensor to transform as it is read and keeps what it returns', async () => {
    const path = join(directory, 'cast.safetensors');
    writeFileSync(path, writeSafetensors({ a: HostTensor.from('float32', [2], [1.5, -3]), b: HostTensor.from('float32', [1], [0.25]) }));
    const seen: string[] = [];
    const file = await readSafetensorsFile(path, {
      transform: (name, tensor) => {
        seen.push(name);
        return name === 'a' ? tensor.cast('float16') : tensor;
      },
    });
    expect(seen).toEqual(['a', 'b']);
    expect(file.tensors.get('a')!.dtype).toBe('float16');
    expect(file.tensors.get('a')!.toArray()).toEqual([1.5, -3]);
    expect(file.tensors.get('b')!.dtype).toBe('float32');
  });

  it('refuses truncated files, a header longer than the file, and overlapping tensors (which would allocate more than the file holds)', async () => {
    const valid = writeSafetensors({ w: HostTensor.from('float32', [4], [1, 2, 3, 4]) });
    const truncated = join(directory, 'truncated.safetensors');
    writeFileSync(truncated, valid.subarray(0, valid.length - 3));
    await expect(readSafetensorsFile(truncated)).rejects.toThrow(FormatError);
    const tooLong = join(directory, 'header.safetensors');
    const header = new Uint8Array(16);
    new DataView(header.buffer).setBigUint64(0, 1000n, true);
    writeFileSync(tooLong, header);
    await expect(readSafetensorsFile(tooLong)).rejects.toThrow(/header length 1000 does not fit/);
    const tiny = join(directory, 'tiny.safetensors');
    writeFileSync(tiny, new Uint8Array(3));
    await expect(readSafetensorsFile(tiny)).rejects.toThrow(FormatError);
    // 1000 tensors all naming the same 4 bytes: a 60 KB file that would otherwise become 1000 buffers.
    const entries: Record<string, object> = {};
    for (let i = 0; i < 1000; i++) entries[`t${i}`] = { dtype: 'F32', shape: [1], data_offsets: [0, 4] };
    const overlapping = join(directory, 'overlap.safetensors');
    writeFileSync(overlapping, withHeader(entries, new Uint8Array(4)));
    await expect(readSafetensorsFile(overlapping)).rejects.toThrow(/overlap/);
  });
});
