/**
 * The torch checkpoint writer: read back exactly by our reader (every dtype,
 * scalars, the whole embedded U-Net), laid out as torch.save lays it out
 * (records 64-byte aligned), and, where Debian's python3-torch is installed,
 * read by `torch.load(weights_only=True)` into the same tensors.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostTensor } from '@diffssl/core';
import { fixturePath, randomTensor } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint, readTorchCheckpoint, torchCheckpointBytes, writeTorchCheckpoint } from '../index.js';

function bytesOf(tensor: HostTensor): Uint8Array {
  const dense = tensor.contiguous();
  const width = dense.data.BYTES_PER_ELEMENT;
  return new Uint8Array(dense.data.buffer, dense.data.byteOffset + dense.offset * width, dense.size * width);
}

function expectSameTensors(actual: ReadonlyMap<string, HostTensor>, expected: ReadonlyMap<string, HostTensor>): void {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  for (const [name, tensor] of expected) {
    const got = actual.get(name)!;
    expect(got.dtype, name).toBe(tensor.dtype);
    expect(got.shape, name).toEqual(tensor.shape);
    expect(Buffer.from(bytesOf(got)).equals(Buffer.from(bytesOf(tensor))), `${name}: bytes`).toBe(true);
  }
}

/** Every tensor dtype the writer takes, a scalar, a strided view and a large count. */
function sampleTensors(): Map<string, HostTensor> {
  const transposedSource = randomTensor([3, 5], 2);
  return new Map<string, HostTensor>([
    ['conv.weight', randomTensor([4, 3, 3, 3], 1)],
    ['half', HostTensor.from('float16', [2, 3], [0.5, -1, 65504, 1e-4, 0, -0])],
    ['double', HostTensor.from('float64', [3], [Math.PI, -1e300, 5e-324])],
    ['steps', HostTensor.from('int64', [], [123456789012n])],
    ['ints', HostTensor.from('int32', [2, 2], [1, -2, 2 ** 31 - 1, -(2 ** 31)])],
    ['bytes', HostTensor.from('uint8', [4], [0, 1, 128, 255])],
    ['mask', HostTensor.from('bool', [3], [1, 0, 1])],
    ['transposed', transposedSource.transpose([1, 0])],
    ['big.weight', randomTensor([300, 400], 3)],
  ]);
}

/** The local file headers of a zip, in order: name and where its data starts. */
function localRecords(zip: Uint8Array): { name: string; dataStart: number }[] {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const records: { name: string; dataStart: number }[] = [];
  let offset = 0;
  while (view.getUint32(offset, true) === 0x04034b50) {
    const nameLength = view.getUint16(offset + 26, true);
    const extraLength = view.getUint16(offset + 28, true);
    const size = view.getUint32(offset + 18, true);
    const name = new TextDecoder().decode(zip.subarray(offset + 30, offset + 30 + nameLength));
    const dataStart = offset + 30 + nameLength + extraLength;
    records.push({ name, dataStart });
    offset = dataStart + size;
  }
  return records;
}

describe('torch checkpoint writer', () => {
  it('is read back exactly by readTorchCheckpoint: every dtype, a scalar, a strided view', async () => {
    const tensors = sampleTensors();
    const bytes = torchCheckpointBytes(tensors);
    expectSameTensors(await readTorchCheckpoint(bytes), tensors);
    // A strided view is written densely in its logical order.
    expect((await readTorchCheckpoint(bytes)).get('transposed')!.toArray()).toEqual(tensors.get('transposed')!.toArray());
  });

  it('lays the records out as torch.save: data.pkl first, 64-byte aligned data, byteorder and version', () => {
    const records = localRecords(torchCheckpointBytes(sampleTensors(), 'unet'));
    expect(records.map((record) => record.name)).toEqual([
      'unet/data.pkl',
      'unet/byteorder',
      ...[...Array(9).keys()].map((i) => `unet/data/${i}`),
      'unet/version',
    ]);
    for (const record of records) expect(record.dataStart % 64, record.name).toBe(0);
  });

  it('writes the embedded U-Net to a file that loadCheckpoint reads back exactly', async () => {
    const weights = await loadCheckpoint(fixturePath('adm-fm28.pt'));
    const path = join(mkdtempSync(join(tmpdir(), 'diffssl-torch-writer-')), 'unet.pt');
    await writeTorchCheckpoint(path, weights);
    expectSameTensors(await loadCheckpoint(path), weights);
  });

  it('refuses an archive name that is not a plain folder name', () => {
    expect(() => torchCheckpointBytes(sampleTensors(), '../x')).toThrow(/archive name must be letters, digits/);
  });

  // The first Python that imports torch: the one on PATH, or Debian's (python3-torch) when PATH has another.
  const python = ['python3', '/usr/bin/python3'].find((candidate) => spawnSync(candidate, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
  if (!python) console.log('torch checkpoint writer: skipped the torch.load test (no python3 imports torch; apt-get install python3-torch to run it)');
  it.skipIf(!python)(
    'is read by torch.load(weights_only=True) into the same tensors: every dtype, and the embedded U-Net as writeTorchCheckpoint writes it',
    async () => {
      const directory = mkdtempSync(join(tmpdir(), 'diffssl-torch-load-'));
      const script = [
        'import hashlib, json, sys, torch',
        'state = torch.load(sys.argv[1], weights_only=True)',
        'print(type(state).__name__)',
        'print(json.dumps({k: [str(v.dtype), list(v.shape), hashlib.sha256(v.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()] for k, v in state.items()}))',
      ].join('\n');
      const torchDtypes: Record<string, string> = {
        float32: 'torch.float32',
        float16: 'torch.float16',
        float64: 'torch.float64',
        int64: 'torch.int64',
        int32: 'torch.int32',
        uint8: 'torch.uint8',
        bool: 'torch.bool',
      };
      const expectTorchReads = (path: string, tensors: ReadonlyMap<string, HostTensor>) => {
        const [kind, json] = execFileSync(python!, ['-c', script, path], { encoding: 'utf8', maxBuffer: 64 << 20 })
          .trim()
          .split('\n');
        expect(kind).toBe('OrderedDict');
        const read = JSON.parse(json!) as Record<string, [string, number[], string]>;
        expect(Object.keys(read)).toEqual([...tensors.keys()]);
        for (const [name, tensor] of tensors)
          expect(read[name], name).toEqual([torchDtypes[tensor.dtype], [...tensor.shape], createHash('sha256').update(bytesOf(tensor)).digest('hex')]);
      };
      const sample = join(directory, 'sample.pt');
      writeFileSync(sample, torchCheckpointBytes(sampleTensors(), 'sample'));
      expectTorchReads(sample, sampleTensors());
      const weights = await loadCheckpoint(fixturePath('adm-fm28.pt'));
      const unet = join(directory, 'unet.pt');
      await writeTorchCheckpoint(unet, weights);
      expectTorchReads(unet, weights);
      expect(readFileSync(unet).subarray(0, 2).toString()).toBe('PK');
    },
  );
});
