#!/usr/bin/env python3
"""The PyTorch side of `pnpm bench:peers`: the same computations as this
project's, written with standard torch modules to the reference semantics of
`../shared/fixtures/README.md` (guided-diffusion's ADM U-Net, the DiffSSL
attention head / DifFormer `AttentionFusion`). It is a peer to time against,
not a copy of the reference code.

Commands (each prints one JSON object on its last line of stdout):
  probe                       torch version and threads
  selfcheck DIR [MODEL=PT..]  this peer against the reference fixtures (checkpoints default to DIR/MODEL.pt)
  check FILE.safetensors      this peer against our outputs written by peers.ts
  bench CONFIG_JSON           time one configuration, report peak RSS
Every command takes --threads N (torch.set_num_threads).
Install: apt-get install python3-torch libopenblas0-pthread (Debian).
"""
import json
import math
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------- safetensors

_DTYPES = {'F32': np.float32, 'F64': np.float64, 'I64': np.int64, 'F16': np.float16, 'I32': np.int32}


def read_safetensors(path):
    """Tensors (as torch tensors) and the metadata of a safetensors file."""
    with open(path, 'rb') as handle:
        length = struct.unpack('<Q', handle.read(8))[0]
        header = json.loads(handle.read(length))
        data = handle.read()
    metadata = header.pop('__metadata__', {})
    tensors = {}
    for name, info in header.items():
        start, end = info['data_offsets']
        array = np.frombuffer(data[start:end], dtype=_DTYPES[info['dtype']]).reshape(info['shape'])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, metadata


# ---------------------------------------------------------------- ADM U-Net (guided-diffusion's layout and names)

def normalization(channels):
    return nn.GroupNorm(32, channels, eps=1e-5)


def timestep_embedding(timesteps, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class Upsample(nn.Module):
    def __init__(self, channels, use_conv, out_channels=None):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, out_channels or channels, 3, padding=1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode='nearest')
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    def __init__(self, channels, use_conv, out_channels=None):
        super().__init__()
        self.op = nn.Conv2d(channels, out_channels or channels, 3, stride=2, padding=1) if use_conv else nn.AvgPool2d(2, 2)

    def forward(self, x):
        return self.op(x)


class ResBlock(nn.Module):
    def __init__(self, channels, emb_channels, out_channels, scale_shift, up=False, down=False):
        super().__init__()
        self.scale_shift = scale_shift
        self.in_layers = nn.Sequential(normalization(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False), Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if scale_shift else out_channels))
        self.out_layers = nn.Sequential(normalization(out_channels), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x, emb):
        if self.updown:
            h = self.in_layers[:-1](x)
            h = self.h_upd(h)
            x = self.x_upd(x)
            h = self.in_layers[-1](h)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb)[:, :, None, None]
        if self.scale_shift:
            scale, shift = torch.chunk(emb_out, 2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    def __init__(self, channels, num_heads, num_head_channels, new_order):
        super().__init__()
        self.num_heads = num_heads if num_head_channels == -1 else channels // num_head_channels
        self.new_order = new_order
        self.norm = normalization(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        bs, width, length = qkv.shape
        ch = width // (3 * self.num_heads)
        if self.new_order:
            q, k, v = (part.reshape(bs * self.num_heads, ch, length) for part in qkv.chunk(3, dim=1))
        else:
            q, k, v = qkv.reshape(bs * self.num_heads, ch * 3, length).split(ch, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        weight = torch.softmax(torch.einsum('bct,bcs->bts', q * scale, k * scale), dim=-1)
        h = torch.einsum('bts,bcs->bct', weight, v).reshape(bs, -1, length)
        return (x + self.proj_out(h)).reshape(b, c, *spatial)


class Sequence(nn.ModuleList):
    """guided-diffusion's TimestepEmbedSequential."""

    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


def _list(value):
    if isinstance(value, str):
        return [float(v) for v in value.split(',') if v.strip()]
    return [float(v) for v in value]


DEFAULT_MULT = {512: [0.5, 1, 1, 2, 2, 4, 4], 256: [1, 1, 2, 2, 4, 4], 128: [1, 1, 2, 3, 4], 64: [1, 2, 3, 4]}


class ADMUNet(nn.Module):
    """guided-diffusion's UNetModel built from its flags, with early exit at the deepest block read."""

    def __init__(self, flags):
        super().__init__()
        size = int(flags['image_size'])
        mc = int(flags['num_channels'])
        mult = _list(flags.get('channel_mult') or '') or DEFAULT_MULT[size]
        res_blocks = int(flags['num_res_blocks'])
        attention = {size // int(r) for r in _list(flags['attention_resolutions'])}
        heads = int(flags.get('num_heads', 4))
        head_channels = int(flags.get('num_head_channels', -1))
        heads_up = int(flags.get('num_heads_upsample', -1))
        heads_up = heads if heads_up == -1 else heads_up
        new_order = bool(flags.get('use_new_attention_order', False))
        scale_shift = bool(flags.get('use_scale_shift_norm', True))
        updown = bool(flags.get('resblock_updown', False))
        in_channels = int(flags.get('in_channels', 3))
        out_channels = in_channels * (2 if flags.get('learn_sigma', False) else 1)
        steps = int(flags.get('diffusion_steps', 1000))
        if flags.get('noise_schedule', 'linear') != 'linear':
            raise ValueError(f"torch peer: expected noise_schedule 'linear'; found {flags.get('noise_schedule')}")
        if flags.get('class_cond', False):
            raise ValueError('torch peer: expected an unconditional model (class_cond false)')
        scale = 1000 / steps
        betas = np.linspace(scale * 0.0001, scale * 0.02, steps, dtype=np.float64)
        alphas_cumprod = np.cumprod(1.0 - betas)
        self.sqrt_ac = np.sqrt(alphas_cumprod)
        self.sqrt_1m_ac = np.sqrt(1.0 - alphas_cumprod)
        emb = mc * 4
        self.model_channels = mc
        self.time_embed = nn.Sequential(nn.Linear(mc, emb), nn.SiLU(), nn.Linear(emb, emb))
        ch = int(mult[0] * mc)
        self.input_blocks = nn.ModuleList([Sequence([nn.Conv2d(in_channels, ch, 3, padding=1)])])
        chans = [ch]
        ds = 1
        for level, m in enumerate(mult):
            for _ in range(res_blocks):
                layers = [ResBlock(ch, emb, int(m * mc), scale_shift)]
                ch = int(m * mc)
                if ds in attention:
                    layers.append(AttentionBlock(ch, heads, head_channels, new_order))
                self.input_blocks.append(Sequence(layers))
                chans.append(ch)
            if level != len(mult) - 1:
                down = ResBlock(ch, emb, ch, scale_shift, down=True) if updown else Downsample(ch, True, ch)
                self.input_blocks.append(Sequence([down]))
                chans.append(ch)
                ds *= 2
        self.middle_block = Sequence(
            [ResBlock(ch, emb, ch, scale_shift), AttentionBlock(ch, heads, head_channels, new_order), ResBlock(ch, emb, ch, scale_shift)]
        )
        self.output_blocks = nn.ModuleList([])
        for level, m in list(enumerate(mult))[::-1]:
            for i in range(res_blocks + 1):
                skip = chans.pop()
                layers = [ResBlock(ch + skip, emb, int(mc * m), scale_shift)]
                ch = int(mc * m)
                if ds in attention:
                    layers.append(AttentionBlock(ch, heads_up, head_channels, new_order))
                if level and i == res_blocks:
                    layers.append(ResBlock(ch, emb, ch, scale_shift, up=True) if updown else Upsample(ch, True, ch))
                    ds //= 2
                self.output_blocks.append(Sequence(layers))
        self.out = nn.Sequential(normalization(ch), nn.SiLU(), nn.Conv2d(int(mult[0] * mc), out_channels, 3, padding=1))

    @property
    def block_count(self):
        return 2 * len(self.input_blocks) + 1

    def q_sample(self, x_start, t, noise):
        """sqrt(abar_t) x_start + sqrt(1 - abar_t) noise, coefficients from the float64 schedule rounded to float32."""
        a = torch.from_numpy(self.sqrt_ac)[t].float()[:, None, None, None]
        b = torch.from_numpy(self.sqrt_1m_ac)[t].float()[:, None, None, None]
        return a * x_start + b * noise

    def forward(self, x, t, taps):
        """Block outputs {block: tensor} for the 1-based block numbers in taps; nothing after the deepest is computed."""
        deepest = max(taps)
        emb = self.time_embed(timestep_embedding(t, self.model_channels))
        found, skips, h, number = {}, [], x, 0
        n_in = len(self.input_blocks)
        for module in self.input_blocks:
            h = module(h, emb)
            skips.append(h)
            number += 1
            if number in taps:
                found[number] = h
            if number == deepest:
                return found
        h = self.middle_block(h, emb)
        number += 1
        if number in taps:
            found[number] = h
        if number == deepest:
            return found
        for module in self.output_blocks:
            h = module(torch.cat([h, skips.pop()], dim=1), emb)
            number += 1
            if number in taps:
                found[number] = h
            if number == deepest:
                return found
        assert number == 2 * n_in + 1
        return found


# ---------------------------------------------------------------- attention head / DifFormer (AttentionFusion)

def parse_fusion(fusion):
    """'Use_CLS_Token:True:D,Insert_CLS_Token,Attention:D:H:R:N,Extract_CLS_Token' -> (dim, heads, mlp_ratio, blocks)."""
    for part in fusion.split(','):
        if part.startswith('Attention:'):
            _, dim, heads, ratio, blocks = part.split(':')
            return int(dim), int(heads), float(ratio), int(blocks)
    raise ValueError(f'torch peer: expected an Attention:dim:heads:mlp_ratio:blocks entry in the fusion string; found {fusion!r}')


class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attention = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class ViTBlock(nn.Module):
    def __init__(self, dim, heads, ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, int(dim * ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, dim, heads, ratio, blocks):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        # layers.0 is Insert_CLS_Token and layers.N+1 Extract_CLS_Token (no parameters), as the reference numbers them.
        self.layers = nn.ModuleList([nn.Identity()] + [ViTBlock(dim, heads, ratio) for _ in range(blocks)] + [nn.Identity()])

    def forward(self, tokens):
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        for layer in self.layers[1:-1]:
            x = layer(x)
        return x[:, 0]


class AttentionFusion(nn.Module):
    """Per block: adaptive pool to min(size, pre_pool), LayerNorm over [C,s,s], 1x1 conv to dim, tokens; blocks concatenated per
    timestep, CLS, pre-norm ViT blocks, CLS outputs of the timesteps concatenated in order, Linear to the classes."""

    def __init__(self, fusion, blocks, timesteps, dims, sizes, pre_pool, classes):
        super().__init__()
        dim, heads, ratio, depth = parse_fusion(fusion)
        self.blocks, self.timesteps = list(blocks), list(timesteps)
        self.pre_layer = nn.ModuleDict()
        for block in self.blocks:
            side = min(int(sizes[str(block)]), pre_pool)
            channels = int(dims[str(block)])
            self.pre_layer[str(block)] = nn.Sequential(
                nn.AdaptiveAvgPool2d(side), nn.LayerNorm([channels, side, side], eps=1e-5), nn.Conv2d(channels, dim, 1)
            )
        self.intra_inter_block_attention = Transformer(dim, heads, ratio, depth)
        self.head = nn.Linear(dim * len(self.timesteps), classes)

    def forward(self, features):
        outputs = []
        for t in self.timesteps:
            tokens = [self.pre_layer[str(b)](features[feature_key(t, b)]).flatten(2).transpose(1, 2) for b in self.blocks]
            outputs.append(self.intra_inter_block_attention(torch.cat(tokens, dim=1)))
        return self.head(torch.cat(outputs, dim=1))


def feature_key(t, block):
    """`t{T}/block{NN}`, the name our extractor and DifFormer give a feature."""
    return f't{t}/block{int(block):02d}'


def head_from_config(config):
    return AttentionFusion(
        config['fusion'], config['blocks'], config['timesteps'], config['dims'], config['sizes'], int(config['pre_pool_size']), int(config['num_classes'])
    )


def head_step(model, features, labels, lr):
    """Logits, loss and the parameters after one plain SGD step (training mode, mean cross-entropy)."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    optimizer.zero_grad(set_to_none=True)
    logits = model(features)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    after = {name: p.detach().clone() for name, p in model.named_parameters()}
    return logits.detach(), loss.detach().reshape(1), grads, after


# ---------------------------------------------------------------- comparisons

def error(actual, expected):
    """max|a-b| / max(1, max|b|), the fixtures' float32 criterion."""
    actual, expected = actual.double(), expected.double()
    if actual.shape != expected.shape:
        return float('inf')
    return float((actual - expected).abs().max() / max(1.0, float(expected.abs().max())))


class Worst:
    def __init__(self):
        self.value, self.name, self.count = 0.0, '', 0

    def add(self, name, value):
        self.count += 1
        if not value <= self.value:  # NaN and inf count as worst
            self.value, self.name = value, name

    def report(self):
        return {'worst': self.value, 'worst_tensor': self.name, 'tensors': self.count}


def load_state(model, tensors, prefix):
    state = {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f'torch peer: parameters under {prefix!r} do not match the model: missing {missing}, unexpected {unexpected}')


def unet_case(tensors, prefix, case, reference_key):
    """Runs the U-Net on q_sample(x_start, t, noise) and compares every block with the reference tensors."""
    model = ADMUNet(case['flags'])
    model.load_state_dict(torch.load(case['checkpoint'], map_location='cpu', weights_only=True))
    model.eval()
    worst = Worst()
    with torch.no_grad():
        for t in case['timesteps']:
            x_start = tensors[f'{prefix}x_start']
            noise = tensors[f'{prefix}t{t}/noise']
            steps = torch.full((x_start.shape[0],), int(t), dtype=torch.long)
            x_t = model.q_sample(x_start, steps, noise)
            blocks = model(x_t, steps, case['blocks'])
            for block in case['blocks']:
                name = reference_key(t, block)
                worst.add(name, error(blocks[block], tensors[name]))
    return worst.report()


def head_case(tensors, prefix, config, lr, reference_prefix, parameter_prefix, compare_grads):
    model = head_from_config(config)
    load_state(model, tensors, parameter_prefix)
    def feature(t, b):
        padded = f'{prefix}input/{feature_key(t, b)}'
        return tensors[padded] if padded in tensors else tensors[f'{prefix}input/t{t}/block{b}']

    features = {feature_key(t, b): feature(t, b) for t in config['timesteps'] for b in config['blocks']}
    logits, loss, grads, after = head_step(model, features, tensors[f'{prefix}labels'].long(), lr)
    worst = Worst()
    worst.add('logits', error(logits, tensors[f'{reference_prefix}logits']))
    worst.add('loss', error(loss, tensors[f'{reference_prefix}loss'].reshape(1)))
    for name, value in after.items():
        worst.add(f'after/{name}', error(value, tensors[f'{reference_prefix}after/{name}']))
    if compare_grads:
        for name, value in grads.items():
            worst.add(f'grad/{name}', error(value, tensors[f'{reference_prefix}grad/{name}']))
    return worst.report()


def selfcheck(directory, checkpoints):
    """This peer against the reference fixtures: U-Net blocks of both checkpoints, the attention and DifFormer head steps."""
    results = {}
    for model in ('adm-fm28', 'adm-37block-random'):
        checkpoint = checkpoints.get(model, f'{directory}/{model}.pt')
        tensors, metadata = read_safetensors(f'{directory}/{model}.features.safetensors')
        config = json.loads(metadata['config'])
        t_list = json.loads(metadata['t_list'])
        blocks = list(range(1, int(metadata['num_blocks']) + 1))
        case = {'flags': config, 'checkpoint': checkpoint, 'timesteps': t_list, 'blocks': blocks}
        results[model] = unet_case(tensors, '', case, lambda t, b: f't{t}/block{b:02d}')
    tensors, metadata = read_safetensors(f'{directory}/heads.safetensors')
    for name in ('attention', 'difformer'):
        meta = json.loads(metadata[name])
        config = {
            'fusion': meta['fusion_arc'],
            'blocks': meta['blocks'],
            'timesteps': meta['t_list'],
            'dims': meta['dims'],
            'sizes': meta['sizes'],
            'pre_pool_size': meta['pre_pool_size'],
            'num_classes': meta['num_classes'],
        }
        renamed = dict(tensors)
        renamed[f'{name}/labels'] = tensors['labels'] if f'{name}/labels' not in tensors else tensors[f'{name}/labels']
        for key in list(tensors):
            if key.startswith(f'{name}/after_sgd/'):
                renamed[f'{name}/after/' + key[len(f'{name}/after_sgd/'):]] = tensors[key]
        results[name] = head_case(renamed, f'{name}/', config, float(metadata[f'{name}/lr']), f'{name}/', f'{name}/param/', True)
    return results


def check(path):
    """This peer against our outputs (peers.ts writes the cases, our results and the shared weights or checkpoints)."""
    tensors, metadata = read_safetensors(path)
    results = {}
    for case in json.loads(metadata['cases']):
        prefix = case['prefix']
        if case['kind'] == 'unet':
            results[case['name']] = unet_case(tensors, prefix, case, lambda t, b, p=prefix: f'{p}ours/{feature_key(t, b)}')
        else:
            results[case['name']] = head_case(tensors, prefix, case['config'], float(case['lr']), f'{prefix}ours/', f'{prefix}param/', False)
    return results


# ---------------------------------------------------------------- benchmarks

def seconds_per_run(run, minimum_seconds, minimum_runs=2):
    """One warm-up call, then at least minimum_runs calls and minimum_seconds in all (as @diffssl/testing's secondsPerRun)."""
    run()
    start = time.perf_counter()
    runs = 0
    while runs < minimum_runs or time.perf_counter() - start < minimum_seconds:
        run()
        runs += 1
    return (time.perf_counter() - start) / runs


def bench(config):
    generator = torch.Generator().manual_seed(0)
    kind = config['kind']
    if kind == 'extract':
        model = ADMUNet(config['flags'])
        if config.get('checkpoint'):
            model.load_state_dict(torch.load(config['checkpoint'], map_location='cpu', weights_only=True))
        model.eval()
        batch, size = int(config['batch']), int(config['flags']['image_size'])
        channels = int(config['flags'].get('in_channels', 3))
        x_start = torch.rand(batch, channels, size, size, generator=generator) * 2 - 1
        timesteps = config['timesteps']

        def run():
            with torch.inference_mode():
                for t in timesteps:
                    steps = torch.full((batch,), int(t), dtype=torch.long)
                    noise = torch.randn(x_start.shape, generator=generator)
                    model(model.q_sample(x_start, steps, noise), steps, config['blocks'])

        seconds = seconds_per_run(run, float(config['seconds']))
        rate = {'images_per_second': batch / seconds}
    elif kind == 'head':
        model = head_from_config(config)
        model.train()
        batch = int(config['batch'])
        features = {}
        for t in config['timesteps']:
            for b in config['blocks']:
                side = int(config['sizes'][str(b)])
                features[feature_key(t, b)] = torch.randn(batch, int(config['dims'][str(b)]), side, side, generator=generator)
        labels = torch.arange(batch) % int(config['num_classes'])
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

        def run():
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(features), labels).backward()
            optimizer.step()

        seconds = seconds_per_run(run, float(config['seconds']))
        rate = {'steps_per_second': 1 / seconds}
    else:
        raise ValueError(f"torch peer: expected kind 'extract' or 'head'; found {kind!r}")
    return {**rate, 'seconds_per_run': seconds, 'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main(argv):
    threads = None
    if '--threads' in argv:
        index = argv.index('--threads')
        threads = int(argv[index + 1])
        del argv[index : index + 2]
    if threads:
        torch.set_num_threads(threads)
    command = argv[0] if argv else 'probe'
    if command == 'probe':
        result = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
    elif command == 'selfcheck':
        result = selfcheck(argv[1], dict(item.split('=', 1) for item in argv[2:]))
    elif command == 'check':
        result = check(argv[1])
    elif command == 'bench':
        result = bench(json.loads(argv[1]))
    else:
        raise SystemExit(f'torch peer: expected probe, selfcheck DIR, check FILE or bench JSON; found {command!r}')
    result['threads'] = torch.get_num_threads()
    print(json.dumps(result))


if __name__ == '__main__':
    main(sys.argv[1:])
