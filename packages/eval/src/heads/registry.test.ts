/**
 * The head registry: one entry per kind drives the protocols, the train
 * command's flags and their refusal, and head-step's head.json forms.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildContext, Graph } from '@diffssl/core';
import { embeddedFlags, fixturePath } from '@diffssl/testing';
import { AdmUNet, readTorchCheckpoint, type DiffusionUNet } from '@diffssl/unet';
import { beforeAll, describe, expect, it } from 'vitest';
import { diffssl, EMBEDDED } from '../../test/cli-helpers.js';
import { HEAD_OPTIONS } from './head-options.js';
import { parseHeadSpec } from './head-spec.js';
import { checkProtocolOptions, createProtocolModel, HEAD_KINDS, protocolKind, PROTOCOLS, takesOption } from './registry.js';

let unet: DiffusionUNet;
beforeAll(async () => {
  unet = new AdmUNet(embeddedFlags() as never, await readTorchCheckpoint(fixturePath('adm-fm28.pt')));
});

describe('the head registry', () => {
  it('lists every protocol once, in report order, and the head.json forms of head-step', () => {
    expect(PROTOCOLS).toEqual(['pixels', 'random', 'linear', 'attention', 'difformer', 'diffeed']);
    expect(new Set(HEAD_KINDS.map((kind) => kind.name)).size).toBe(HEAD_KINDS.length);
    expect(HEAD_KINDS.flatMap((kind) => (kind.spec ? [kind.spec.kind] : []))).toEqual(['linear', 'fusion', 'layers']);
    expect(() => protocolKind('layers')).toThrow("--protocol: expected one of pixels, random, linear, attention, difformer, diffeed; found 'layers'");
  });

  it.each(PROTOCOLS)('builds a %s model whose logits are [batch, classes] from its declared inputs', (protocol) => {
    const support = protocolKind(protocol).protocol;
    const blocks = support.blocks === 'none' ? [] : support.blocks === 'one' ? [10] : [8, 10];
    const timesteps = support.blocks === 'none' ? [] : support.blocks === 'one' ? [50] : [50, 150];
    const model = createProtocolModel({ protocol, blocks, timesteps, numClasses: 7, seed: 1 }, support.unet === 'none' ? undefined : unet, [1, 28, 28]);
    const graph = new Graph();
    const context = new BuildContext(graph, model.modules(), { mode: 'train' });
    const inputs = new Map([...model.inputs()].map(([name, input]) => [name, graph.input(name, input.dtype, [5, ...input.shape])]));
    expect(model.forward(context, inputs).shape).toEqual([5, 7]);
    expect(model.timesteps).toEqual(timesteps);
  });

  it("keeps the reference's learning rates and pre-pool sizes", () => {
    const defaults = Object.fromEntries(PROTOCOLS.map((name) => [name, [protocolKind(name).protocol.learningRate, protocolKind(name).protocol.prePoolSize]]));
    expect(defaults).toEqual({ pixels: [1e-2, 0], random: [1e-2, 2], linear: [1e-2, 2], attention: [5e-2, 7], difformer: [5e-2, 7], diffeed: [1e-2, 7] });
  });

  it('refuses a protocol reading one block given several, and a protocol without blocks', () => {
    expect(() => createProtocolModel({ protocol: 'attention', blocks: [8, 10], timesteps: [50], numClasses: 10 }, unet)).toThrow(
      'attention: reads one block at one timestep; found blocks [8, 10] and timesteps [50] (use difformer to fuse several)',
    );
    expect(() => createProtocolModel({ protocol: 'difformer', blocks: [], timesteps: [50], numClasses: 10 }, unet)).toThrow(
      'difformer: expected at least one block (--blocks); found none',
    );
    expect(() => createProtocolModel({ protocol: 'linear', blocks: [10], timesteps: [50], numClasses: 10 }, undefined)).toThrow(
      'linear: needs a U-Net (--checkpoint and --config)',
    );
  });

  it('refuses, in one line naming the flag and the protocol, an option the protocol does not take', () => {
    const refusals: [Parameters<typeof checkProtocolOptions>[0], Parameters<typeof checkProtocolOptions>[1], string][] = [
      ['linear', { fusionArc: 'Reshape' }, '--fusion-arc does not apply to protocol linear; it applies to attention, difformer, diffeed'],
      ['linear', { normType: 'batch' }, '--norm-type does not apply to protocol linear; it applies to attention, difformer, diffeed'],
      ['attention', { headArc: '256' }, '--head-arc does not apply to protocol attention; it applies to random, linear'],
      ['difformer', { feedbackFrom: [11] }, '--feedback-from does not apply to protocol difformer; it applies to diffeed'],
      ['attention', { feedbackArch: 'C_B_R' }, '--feedback-arch does not apply to protocol attention; it applies to diffeed'],
      ['pixels', { blocks: [10] }, '--blocks does not apply to protocol pixels; it applies to random, linear, attention, difformer, diffeed'],
      ['random', { checkpoint: 'x.pt' }, '--checkpoint does not apply to protocol random; it applies to linear, attention, difformer, diffeed'],
      ['diffeed', { draws: 2 }, '--draws does not apply to protocol diffeed; it applies to random, linear, attention, difformer'],
      ['diffeed', { cache: false }, '--cache/--no-cache does not apply to protocol diffeed; it applies to random, linear, attention, difformer'],
      ['linear', { draws: 2, cache: false }, '--draws does not apply with --no-cache: recomputed features use one noise draw per image'],
    ];
    for (const [protocol, given, message] of refusals) expect(() => checkProtocolOptions(protocol, given)).toThrow(message);
    // What a protocol takes passes, and unset options are ignored.
    expect(() =>
      checkProtocolOptions('diffeed', { feedbackFrom: [11], feedbackArch: 'C_B_R', fusionArc: 'x', normType: 'batch', prePoolSize: 7, headArc: undefined }),
    ).not.toThrow();
    for (const option of Object.keys(HEAD_OPTIONS) as (keyof typeof HEAD_OPTIONS)[])
      expect(PROTOCOLS.some((protocol) => takesOption(protocol, option))).toBe(true);
  });

  it('reads head.json through the forms: t_list on linear (finetune-step), unknown keys refused with the known ones', () => {
    expect(parseHeadSpec({ kind: 'linear', block: 8, pre_pool_size: 2, head_arc: '', num_classes: 10, t_list: [50] })).toEqual({
      kind: 'linear',
      block: 8,
      pre_pool_size: 2,
      head_arc: '',
      num_classes: 10,
      t_list: [50],
    });
    expect(() => parseHeadSpec({ kind: 'fusion', fusion_arc: 'x', blocks: [1], t_list: [1], pre_pool_size: 7, num_classes: 2, head_arc: '' })).toThrow(
      'head spec: unknown key(s) head_arc for kind "fusion"; known: kind, fusion_arc, blocks, t_list, norm_type, pre_pool_size, num_classes, dims, sizes',
    );
  });
});

describe('diffssl train flags per protocol', () => {
  it.each([
    [['--protocol', 'linear', '--blocks', '10', '--timesteps', '50', '--fusion-arc', 'Reshape'], '--fusion-arc does not apply to protocol linear'],
    [['--protocol', 'attention', '--blocks', '10', '--timesteps', '50', '--head-arc', '256'], '--head-arc does not apply to protocol attention'],
    [['--protocol', 'linear', '--blocks', '10', '--timesteps', '50', '--no-cache', '--draws', '2'], '--draws does not apply with --no-cache'],
    [['--protocol', 'linear', '--blocks', '10', '--timesteps', '50', '--norm-type', 'group'], "--norm-type: expected 'layer' or 'batch'; found 'group'"],
    // EMBEDDED gives --checkpoint, which the random baseline (a freshly initialized U-Net) would ignore.
    [
      ['--protocol', 'random', '--blocks', '10', '--timesteps', '50'],
      '--checkpoint does not apply to protocol random; it applies to linear, attention, difformer, diffeed',
    ],
  ])('refuses %j in one line', async (args, message) => {
    const out = mkdtempSync(join(tmpdir(), 'diffssl-train-flags-'));
    const result = await diffssl(['train', ...EMBEDDED, ...args, '--out', out, '--quiet']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('lists in --help, for each kind-specific flag, the protocols that take it', async () => {
    const { stdout } = await diffssl(['train', '--help']);
    expect(stdout.replace(/\s+/g, ' ')).toContain('--feedback-arch <arch> diffeed: feedback network arch');
    expect(stdout.replace(/\s+/g, ' ')).toContain('--head-arc <arc> random, linear: hidden layers');
  });
});
