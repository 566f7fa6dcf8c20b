import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compileModel, createRunner, Graph, HostTensor, readSafetensors, writeSafetensors } from '@diffssl/core';
import { AdmUNet, readTorchCheckpoint } from '@diffssl/unet';
import { describe, expect, it } from 'vitest';
import { embeddedFlags, fixturePath, randomTensor, relativeError } from '@diffssl/testing';
import { unetRun } from './unet-run.js';

const CLI = fileURLToPath(new URL('../cli.ts', import.meta.url));
const run = promisify(execFile);

function cli(args: string[]) {
  return run(process.execPath, ['--conditions=@diffssl/source', '--import', 'tsx', CLI, ...args], { timeout: 120_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

function setup(model: 'adm-fm28' | 'adm-37block-random', t: number) {
  const directory = mkdtempSync(join(tmpdir(), 'diffssl-cli-'));
  const features = readSafetensors(readFileSync(fixturePath(`${model}.features.safetensors`)));
  writeFileSync(join(directory, 'flags.json'), features.metadata.config!);
  const x = features.tensors.get(`t${t}/x_t`)!;
  writeFileSync(join(directory, 'in.safetensors'), writeSafetensors({ x, t: HostTensor.from('int64', [x.shape[0]!], [BigInt(t), BigInt(t)]) }));
  return { directory, features };
}

describe('diffssl unet-run with DifFeed feedback', () => {
  it.each(['adm-fm28', 'adm-37block-random'] as const)('computes the feedback outputs and the second pass of the %s fixture end to end', async (model) => {
    const fixture = readSafetensors(readFileSync(fixturePath(`${model}.features.safetensors`)));
    const {
      feedback_b_list: sources,
      second_fw_b_list: second,
      t,
      arch,
    } = JSON.parse(fixture.metadata.feedback!) as { feedback_b_list: number[]; second_fw_b_list: number[]; t: number; arch: string };
    const { directory } = setup(model, t);
    // The fixture's `feedback/{b}/{j}.*` under the reference's names `feedback_layers.{i}.{j}.*`.
    const weights = new Map<string, HostTensor>();
    sources.forEach((source, i) => {
      for (const [name, tensor] of fixture.tensors)
        if (name.startsWith(`feedback/${source}/`) && !name.endsWith('/output'))
          weights.set(`feedback_layers.${i}.${name.slice(`feedback/${source}/`.length)}`, tensor);
    });
    writeFileSync(join(directory, 'fb.safetensors'), writeSafetensors(weights));
    const out = join(directory, 'out.safetensors');
    const result = await cli([
      'unet-run',
      '--checkpoint',
      fixturePath(`${model}.pt`),
      '--config',
      join(directory, 'flags.json'),
      '--input',
      join(directory, 'in.safetensors'),
      '--feedback-from',
      sources.join(','),
      '--feedback-arch',
      arch,
      '--feedback-weights',
      join(directory, 'fb.safetensors'),
      '--blocks',
      second.join(','),
      '--out',
      out,
      '--provider',
      'cpu',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const written = readSafetensors(readFileSync(out)).tensors;
    const blockName = (n: number) => `block${String(n).padStart(2, '0')}`;
    expect([...written.keys()].sort()).toEqual([...sources.map((b) => `feedback/${b}/output`), ...second.map(blockName)].sort());
    for (const source of sources)
      expect(
        relativeError(written.get(`feedback/${source}/output`)!, fixture.tensors.get(`feedback/${source}/output`)!),
        `feedback ${source}`,
      ).toBeLessThanOrEqual(1e-4);
    for (const block of second)
      expect(
        relativeError(written.get(blockName(block))!, fixture.tensors.get(`feedback/second/${blockName(block)}`)!),
        `second pass ${block}`,
      ).toBeLessThanOrEqual(1e-4);
    const partial = await cli([
      'unet-run',
      '--checkpoint',
      fixturePath(`${model}.pt`),
      '--config',
      join(directory, 'flags.json'),
      '--input',
      join(directory, 'in.safetensors'),
      '--feedback-from',
      sources.join(','),
      '--blocks',
      '1',
      '--out',
      out,
      '--provider',
      'cpu',
    ]);
    expect(partial.code).not.toBe(0);
    expect(partial.stderr).toMatch(/--feedback-from, --feedback-arch and --feedback-weights go together/);
  });
});

describe('diffssl unet-run', () => {
  it('writes every block and the output, matching the reference fixture', async () => {
    const { directory, features } = setup('adm-37block-random', 150);
    const out = join(directory, 'out.safetensors');
    const result = await cli([
      'unet-run',
      '--checkpoint',
      fixturePath('adm-37block-random.pt'),
      '--config',
      join(directory, 'flags.json'),
      '--input',
      join(directory, 'in.safetensors'),
      '--blocks',
      'all',
      '--with-output',
      '--out',
      out,
      '--provider',
      'cpu',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const written = readSafetensors(readFileSync(out)).tensors;
    expect([...written.keys()]).toEqual([...Array.from({ length: 37 }, (_, i) => `block${String(i + 1).padStart(2, '0')}`), 'out']);
    for (const [name, tensor] of written) {
      const expected = features.tensors.get(`t150/${name}`);
      expect(expected, name).toBeDefined();
      // relativeError checks the shapes first: a short or empty output cannot pass.
      expect(relativeError(tensor, expected!), name).toBeLessThanOrEqual(1e-4);
    }
  });

  it('writes only the requested blocks', async () => {
    const { directory } = setup('adm-fm28', 0);
    const out = join(directory, 'out.safetensors');
    const result = await cli([
      'unet-run',
      '--checkpoint',
      fixturePath('adm-fm28.pt'),
      '--config',
      join(directory, 'flags.json'),
      '--input',
      join(directory, 'in.safetensors'),
      '--blocks',
      '1,5,9',
      '--out',
      out,
      '--provider',
      'cpu',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect([...readSafetensors(readFileSync(out)).tensors.keys()]).toEqual(['block01', 'block05', 'block09']);
  });

  it('prints the placement of its graph with --verbose', async () => {
    const { directory } = setup('adm-fm28', 0);
    const out = join(directory, 'out.safetensors');
    const args = ['unet-run', '--checkpoint', fixturePath('adm-fm28.pt'), '--config', join(directory, 'flags.json')];
    const result = await cli([...args, '--input', join(directory, 'in.safetensors'), '--blocks', '2,5', '--out', out, '--provider', 'cpu', '--verbose']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /placement of the graph of block02, block05: [\d.]+ MFLOP in \d+ nodes; CPUExecutionProvider 100\.00% \(\d+ nodes\)\n {2}every node ran on CPUExecutionProvider\n/,
    );
    const quiet = await cli([...args, '--input', join(directory, 'in.safetensors'), '--blocks', '2,5', '--out', out, '--provider', 'cpu']);
    expect(quiet.stderr).not.toMatch(/placement/);
  });

  it('answers bad arguments with one line and a non-zero exit, never a stack trace', async () => {
    const { directory } = setup('adm-fm28', 0);
    const base = [
      'unet-run',
      '--checkpoint',
      fixturePath('adm-fm28.pt'),
      '--config',
      join(directory, 'flags.json'),
      '--input',
      join(directory, 'in.safetensors'),
      '--out',
      join(directory, 'o.safetensors'),
      '--provider',
      'cpu',
    ];
    const cases: [string[], RegExp][] = [
      [[...base, '--blocks', '0,20'], /--blocks: expected 'all' or block numbers in 1..19/],
      [[...base, '--blocks', 'x'], /--blocks/],
      [['unet-run', '--blocks', 'all'], /required option/],
      [[...base.map((a) => (a.endsWith('adm-fm28.pt') ? fixturePath('adm-37block-random.pt') : a)), '--blocks', 'all'], /does not fit the U-Net configuration/],
      [
        [...base.map((a) => (a.endsWith('flags.json') ? join(directory, 'missing.json') : a)), '--blocks', 'all'],
        /--config: '.*missing.json' is neither a preset .* nor a readable flags file/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const result = await cli(args);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(pattern);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    }
  });
});

describe('diffssl unet-run with a class-conditional model', () => {
  /**
   * A class-conditional checkpoint built here: adm-fm28's weights plus a seeded
   * label embedding of 5 classes, with class_cond: true. Checked against the
   * unconditional network whose time_embed.2.bias is shifted by label_emb[y]
   * (guided-diffusion adds label_emb(y) right after that bias), added by hand.
   */
  async function conditionalSetup() {
    const directory = mkdtempSync(join(tmpdir(), 'diffssl-cli-cond-'));
    const flags = embeddedFlags();
    const embed = 4 * (flags.num_channels as number);
    const base = await readTorchCheckpoint(fixturePath('adm-fm28.pt'));
    const labelEmbedding = randomTensor([5, embed], 99, -1, 1);
    writeFileSync(join(directory, 'conditional.safetensors'), writeSafetensors(new Map([...base, ['label_emb.weight', labelEmbedding]])));
    writeFileSync(join(directory, 'flags.json'), JSON.stringify({ ...flags, class_cond: true }));
    const x = randomTensor([2, 3, 28, 28], 5, -1, 1);
    const t = HostTensor.from('int64', [2], [150n, 150n]);
    const y = HostTensor.from('int64', [2], [3n, 1n]);
    writeFileSync(join(directory, 'in.safetensors'), writeSafetensors({ x, t, y }));
    const shifted = (label: number) => {
      const bias = base.get('time_embed.2.bias')!.toArray();
      const weights = new Map(base);
      weights.set(
        'time_embed.2.bias',
        HostTensor.from(
          'float32',
          [embed],
          bias.map((b, i) => Math.fround(b + labelEmbedding.data[label * embed + i]!)),
        ),
      );
      return new AdmUNet(flags as never, weights);
    };
    return { directory, flags, x, shifted };
  }

  it('reads y from --input and passes it as the class labels', async () => {
    const { directory, x, shifted } = await conditionalSetup();
    const out = join(directory, 'out.safetensors');
    const result = await cli([
      'unet-run',
      '--checkpoint',
      join(directory, 'conditional.safetensors'),
      '--config',
      join(directory, 'flags.json'),
      '--input',
      join(directory, 'in.safetensors'),
      '--blocks',
      '4,9',
      '--with-output',
      '--out',
      out,
      '--provider',
      'cpu',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const written = readSafetensors(readFileSync(out)).tensors;
    for (const [b, label] of [
      [0, 3],
      [1, 1],
    ] as const) {
      const unet = shifted(label);
      const graph = new Graph();
      const input = graph.input('x', 'float32', [1, 3, 28, 28]);
      const timesteps = graph.input('t', 'int64', [1]);
      const { blocks, output } = unet.build(graph, { x: input, timesteps, taps: [4, 9], output: true });
      const runner = await createRunner(compileModel({ outputs: { block04: blocks.get(4)!, block09: blocks.get(9)!, out: output! } }), {
        executionProviders: ['cpu'],
      });
      const expected = await runner.run({ x: x.slice([b], [b + 1]).contiguous(), t: HostTensor.from('int64', [1], [150n]) });
      await runner.release();
      for (const name of ['block04', 'block09', 'out']) {
        expect(
          relativeError(
            written
              .get(name)!
              .slice([b], [b + 1])
              .contiguous(),
            expected[name]!,
          ),
          `image ${b} (label ${label}) ${name}`,
        ).toBeLessThanOrEqual(1e-5);
      }
    }
  });

  it('refuses missing, mis-typed and out-of-range labels, and labels for an unconditional model', async () => {
    const { directory, flags, x } = await conditionalSetup();
    const run = (input: Record<string, HostTensor>, config = 'flags.json', checkpoint = join(directory, 'conditional.safetensors')) => {
      writeFileSync(join(directory, 'case.safetensors'), writeSafetensors(input));
      return unetRun({
        checkpoint,
        config: join(directory, config),
        input: join(directory, 'case.safetensors'),
        blocks: '2',
        out: join(directory, 'case-out.safetensors'),
        providers: ['cpu'],
      });
    };
    const t = HostTensor.from('int64', [2], [10n, 10n]);
    await expect(run({ x, t })).rejects.toThrow(/class-conditional \(5 classes\); add class labels y \(int64 \[2\]\)/);
    await expect(run({ x, t, y: HostTensor.from('float32', [2], [1, 2]) })).rejects.toThrow(/y must be int64 \[2\]; found float32\[2\]/);
    await expect(run({ x, t, y: HostTensor.from('int64', [1], [1n]) })).rejects.toThrow(/y must be int64 \[2\]/);
    await expect(run({ x, t, y: HostTensor.from('int64', [2], [1n, 5n]) })).rejects.toThrow(/class label 5 is outside 0\.\.4/);
    writeFileSync(join(directory, 'uncond.json'), JSON.stringify(flags));
    await expect(run({ x, t, y: HostTensor.from('int64', [2], [1n, 2n]) }, 'uncond.json', fixturePath('adm-fm28.pt'))).rejects.toThrow(
      /has class labels y, but the model is unconditional/,
    );
  });
});
